"""The agenda as JSON (``--format json``) and back: a stable document for other programs."""

from __future__ import annotations

from pydantic import TypeAdapter

from tasuki.meeting.agenda import Agenda

_ADAPTER: TypeAdapter[Agenda] = TypeAdapter(Agenda)


def to_json(agenda: Agenda, *, indent: int | None = 2) -> str:
    """The agenda as a JSON document: instants ISO-8601 with their offset, enums as their
    values; readable back with :func:`from_json`."""
    return _ADAPTER.dump_json(agenda, indent=indent).decode()


def from_json(text: str | bytes) -> Agenda:
    """The agenda a :func:`to_json` document holds (equal to the one written)."""
    return _ADAPTER.validate_json(text)
