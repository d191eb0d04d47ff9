"""How recordings are read and linked: ``recordings.yaml``, validated like ``tasuki.yaml``.

The file is looked up next to the active ``tasuki.yaml``; without one, the copy shipped in
``tasuki/defaults/recordings.yaml`` applies. It says where each fact sits in a provider's JSON
(a MiiTel payload's fields are not all published, so every path there is a setting, not a
guess buried in code), how CRM users are found from a MiiTel user, which CRM objects a call or a
meeting may match, and which deal fields receive the links.

A path is dotted keys into the JSON body; ``[]`` after a key walks every item of a list, a
number picks one item: ``call.details[].from_number``, ``payload.object.recording_files.0.id``.
A single-valued fact (id, time, link) takes the first path that holds a value; a many-valued one
(phone numbers, emails) gathers every path's values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tasuki.errors import ConfigError
from tasuki.settings import Settings, builtin_path
from tasuki.yamlsource import load, problems_from_validation

FILE_NAME = "recordings.yaml"
"""Name of the recordings settings file, looked up next to ``tasuki.yaml``."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MiitelFields(_Strict):
    """Where each fact of a MiiTel call event sits (candidate paths, first hit wins)."""

    challenge: list[str] = ["challenge"]
    call_id: list[str] = ["call.id", "call_id", "id"]
    event: list[str] = ["event", "type", "call.event"]
    started_at: list[str] = [
        "call.details.0.dial_start_at",
        "call.details.0.talk_start_at",
        "call.start_at",
        "started_at",
    ]
    phones: list[str] = [
        "call.details[].from_number",
        "call.details[].to_number",
        "from_number",
        "to_number",
    ]
    user_email: list[str] = ["call.details[].user.email", "call.user.email", "user.email"]
    user_id: list[str] = ["call.details[].user.id", "call.user.id", "user.id", "user_id"]
    url: list[str] = ["call.url", "call.analysis_url", "url", "recording_url"]


class MiitelConfig(_Strict):
    """Reading MiiTel's outgoing webhook (call history)."""

    token_header: str = "Authorization"
    """The header configured under "Additional headers" in MiiTel Admin; its value must equal
    ``TASUKI_MIITEL_TOKEN`` (a leading ``Bearer `` is accepted)."""
    fields: MiitelFields = MiitelFields()
    url_template: str | None = None
    """When the payload carries no link: e.g. ``https://YOURCO.miitel.jp/app/calls/{call_id}``."""
    users: dict[str, str] = Field(default_factory=dict)
    """MiiTel user id → CRM user email, for users whose MiiTel and CRM emails differ."""
    own_numbers: list[str] = Field(default_factory=list)
    """The company's own lines: never matched to a lead."""


class ZoomFields(_Strict):
    """Where each fact of a Zoom event sits (Zoom publishes these; kept editable all the same)."""

    meeting_uuid: list[str] = ["payload.object.uuid"]
    topic: list[str] = ["payload.object.topic"]
    started_at: list[str] = ["payload.object.start_time"]
    host_email: list[str] = ["payload.object.host_email"]
    url: list[str] = ["payload.object.share_url"]
    participant_emails: list[str] = ["payload.object.participant.email"]
    """``meeting.participant_joined`` carries one participant; ``recording.completed`` none."""


class ZoomConfig(_Strict):
    """Reading Zoom's event notifications."""

    fields: ZoomFields = ZoomFields()
    events: list[str] = ["recording.completed", "meeting.participant_joined"]
    """Events kept; any other signed event is acknowledged and ignored."""


class MatchingConfig(_Strict):
    """Which CRM records a recording may link to."""

    call_objects: list[str] = ["lead", "contact"]
    """Objects searched by phone (those mapped in tasuki.yaml with a ``phone`` field)."""
    meeting_window_hours: float = 12.0
    """A deal's ``meeting_date`` within this many hours of the meeting start is its meeting."""
    free_mail_domains: list[str] = [
        "gmail.com",
        "yahoo.co.jp",
        "outlook.com",
        "hotmail.com",
        "icloud.com",
        "docomo.ne.jp",
        "ezweb.ne.jp",
        "softbank.ne.jp",
    ]
    """Domains that say nothing about the company: never matched to an account."""


class WritebackFields(_Strict):
    """Logical deal fields that receive the latest recording links (``null`` to skip one)."""

    call: str | None = "call_recording_url"
    meeting: str | None = "meeting_recording_url"


class RecordingsConfig(_Strict):
    """The whole of ``recordings.yaml``."""

    miitel: MiitelConfig = MiitelConfig()
    zoom: ZoomConfig = ZoomConfig()
    matching: MatchingConfig = MatchingConfig()
    writeback: WritebackFields = WritebackFields()


def config_path(settings: Settings) -> Path:
    """``recordings.yaml`` beside the active ``tasuki.yaml``, else the shipped default."""
    beside = settings.config_path.parent / FILE_NAME
    return beside if beside.is_file() else builtin_path(FILE_NAME)


def load_recordings_config(settings: Settings) -> RecordingsConfig:
    """Read and validate the recordings settings; every problem raised at once, placed."""
    doc = load(config_path(settings))
    data: Any = doc.data or {}
    try:
        return RecordingsConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(doc, exc)) from exc
