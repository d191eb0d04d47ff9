"""Connectors: one module per system, all speaking :class:`tasuki.crm.Connector`.

:func:`tasuki.startup.connector_for` (the composition root) is the one place a connector is
chosen and built.
"""

from tasuki.crm import (
    CallCounter,
    ChangePage,
    Connector,
    FieldChange,
    RawRecord,
    RecordWrite,
    WriteResult,
)

__all__ = [
    "CallCounter",
    "ChangePage",
    "Connector",
    "FieldChange",
    "RawRecord",
    "RecordWrite",
    "WriteResult",
]
