"""Core commands: demo, serve, worker, db."""

from __future__ import annotations

import click


def register_core(main: click.Group) -> None:
    """Attach the core commands to ``main``."""
    del main
