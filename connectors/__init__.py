"""Connectors: one module per system, all speaking :class:`connectors.base.Connector`.

``connector_for(settings)`` is the one place a connector is chosen and built.
"""

from connectors.base import (
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
