"""RQ jobs: top-level functions with small JSON-safe arguments; every one can run twice unharmed.

Each job looks up settings, store and connector in :mod:`tasuki.runtime`, does its work through
the pipeline modules, and queues what follows (write-back, KPIs) as merged, unique jobs.
"""

from __future__ import annotations
