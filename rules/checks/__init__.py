"""Check types, registered by their YAML name (see :mod:`rules.checks.base`).

Importing this package registers every built-in type.
"""

from rules.checks import fields, logic, records, times
from rules.checks.base import CHECK_TYPES, Check, CheckParser, known_checks, register

__all__ = [
    "CHECK_TYPES",
    "Check",
    "CheckParser",
    "fields",
    "known_checks",
    "logic",
    "records",
    "register",
    "times",
]
