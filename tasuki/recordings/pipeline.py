"""What the recording jobs do: keep a delivery, link what is pending, compute the links to write.

Each function takes the process's :class:`~tasuki.runtime.Runtime`; ``worker.py`` wraps them as
RQ jobs and re-judges the handoffs whose records gained or lost a recording.
"""

from __future__ import annotations

from typing import Any

from tasuki.recordings import miitel, zoom
from tasuki.recordings.capture import Capture
from tasuki.recordings.config import RecordingsConfig, load_recordings_config
from tasuki.recordings.rematch import forget_if_idle, rematch
from tasuki.recordings.store import has_pending, keep
from tasuki.recordings.values import recording_values
from tasuki.runtime import Runtime
from tasuki.writeback import DesiredValue

PROVIDERS = (miitel.PROVIDER, zoom.PROVIDER)
_CONFIG_KEY = "recordings_config"


def recordings_config(rt: Runtime) -> RecordingsConfig:
    """The runtime's recordings settings, read once per process."""
    cfg = rt.extras.get(_CONFIG_KEY)
    if not isinstance(cfg, RecordingsConfig):
        cfg = load_recordings_config(rt.settings)
        rt.extras[_CONFIG_KEY] = cfg
    return cfg


def capture_of(provider: str, payload: dict[str, Any], cfg: RecordingsConfig) -> Capture | None:
    """The provider's payload read into a :class:`Capture` (``None``: nothing to keep)."""
    if provider == miitel.PROVIDER:
        return miitel.parse(payload, cfg.miitel)
    if provider == zoom.PROVIDER:
        return zoom.parse(payload, cfg.zoom)
    raise ValueError(f"unknown recording provider {provider!r}; known: {', '.join(PROVIDERS)}")


def ingest(rt: Runtime, provider: str, payload: dict[str, Any]) -> bool:
    """Keep one delivery; True when the store learnt something new from it."""
    capture = capture_of(provider, payload, recordings_config(rt))
    if capture is None:
        return False
    with rt.store.session() as session:
        _, changed = keep(session, capture)
    return changed


def link_pending(rt: Runtime, *, full: bool = False) -> list[tuple[str, str]]:
    """Match the pending recordings that changes since the last pass concern (every pending
    one when ``full``, :mod:`tasuki.recordings.rematch`); the (object, record id) pairs whose
    recordings changed."""
    with rt.store.session() as session:
        return rematch(session, rt.settings.config, rt.system, recordings_config(rt), full=full)


def pending(rt: Runtime) -> bool:
    """True when some recording waits for a link."""
    with rt.store.session() as session:
        return has_pending(session)


def pass_due(rt: Runtime) -> bool:
    """After a sync that changed records: True when some recording waits for a link (a pass is
    due); when none does, the marks the sync left are forgotten, since no pass needs them."""
    with rt.store.session() as session:
        forget_if_idle(session)
    return pending(rt)


def desired(rt: Runtime) -> list[DesiredValue]:
    """The recording links the CRM's deals should hold."""
    with rt.store.session() as session:
        return recording_values(session, rt.settings.config, recordings_config(rt), rt.system)
