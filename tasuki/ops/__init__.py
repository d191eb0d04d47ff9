"""Operating tasuki: run history (:mod:`tasuki.ops.runs`), metrics
(:mod:`tasuki.ops.metrics`) and the ``runs`` / ``jobs`` commands (:mod:`tasuki.ops.cli`)."""
