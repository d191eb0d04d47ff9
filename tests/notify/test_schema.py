"""Notification rules files: the shipped one is valid; every mistake of a wrong one is reported
at once as FILE:LINE:COL (unknown event, channel, field, recipient, KPI, schedule, a duplicate
id); ``tasuki check-config`` refuses to start on them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tasuki.cli import main
from tasuki.errors import ConfigError
from tasuki.notify.event_types import EVENTS
from tasuki.notify.schema import load_notification_book
from tasuki.settings import Settings, builtin_path

BAD = """\
destinations:
  ops: {slack: "#ops", pager: x}
notifications:
  - id: a
    event: handoff_faild
    to: [sender]
  - id: b
    event: sla_warning
    to: [receiver, boss]
    via: [slack, fax]
    colour: red
    at: 1.5
  - id: c
    event: partial_optimisation
    to: [ops]
    when: "every monday"
    departments: [MK, Sales]
  - id: a
    event: sync_stale
    to: [ops]
    after: 2 business days
"""

EXPECTED = [
    "2:24: unknown channel 'pager'; known: slack, email",
    f"5:12: unknown event 'handoff_faild'; known events: {', '.join(EVENTS)}",
    "9:20: unknown recipient 'boss'; roles and destinations: sender, receiver, "
    "receiver_manager, sender_manager, ops",
    "10:18: unknown channel 'fax'; known channels: slack, email",
    "11:5: notifications.1.colour: unknown setting for event sla_warning",
    "12:9: notifications.1.at: Input should be less than 1",
    "16:11: when is business_hours, any_time or a cron expression: 'every monday' has 2 "
    "fields; a cron expression has 5: minute hour day-of-month month day-of-week",
    "17:23: notifications.2.departments.1: Input should be 'MK', 'IS', 'FS' or 'CS'",
    "18:9: duplicate rule id 'a' (first at {file}:4:9)",
    "21:12: notifications.3.after: Value error, a sync is late on the clock: write minutes "
    "or hours, not business",
]


def test_the_shipped_rules_are_valid_and_cover_every_event_but_none(settings: Settings) -> None:
    book = load_notification_book([builtin_path("notifications.yaml")], settings.config)
    assert {r.event for r in book.rules} == set(EVENTS)
    assert set(book.destinations) == {"sales_ops", "ops", "managers"}
    assert book.people.manager_field == "manager"


def test_every_mistake_is_reported_at_once_with_its_place(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "notifications.yaml"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_notification_book([path], settings.config)
    shown = [str(p).removeprefix(f"{path}:") for p in caught.value.problems]
    assert shown == [e.replace("{file}", str(path)) for e in EXPECTED]


def test_rules_may_send_to_a_destination_of_another_file_and_boundaries_are_checked(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "a.yaml").write_text("destinations:\n  ops: {email: ops@acme.test}\n")
    (tmp_path / "b.yaml").write_text(
        "notifications:\n"
        "  - {id: x, event: failed_jobs, to: [ops]}\n"
        "  - {id: y, event: handoff_failed, to: [sender], boundaries: [IS→CS]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_notification_book([tmp_path / "a.yaml", tmp_path / "b.yaml"], settings.config)
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'b.yaml'}:3:63: unknown boundary IS→CS; tasuki.yaml has MK→IS, IS→FS, FS→CS"
    ]


def test_check_config_refuses_a_wrong_notifications_file(tmp_path: Path) -> None:
    config = yaml.safe_load(builtin_path("tasuki.yaml").read_text(encoding="utf-8"))
    config["notifications"] = ["notifications.yaml"]
    (tmp_path / "tasuki.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    (tmp_path / "notifications.yaml").write_text(BAD, encoding="utf-8")
    env = {
        "TASUKI_CONFIG": str(tmp_path / "tasuki.yaml"),
        "TASUKI_DATA_DIR": str(tmp_path / "data"),
        "TASUKI_WEBHOOK_SECRET": "s",
    }
    result = CliRunner().invoke(main, ["check-config"], env=env)
    assert result.exit_code == 2
    assert f"{tmp_path / 'notifications.yaml'}:5:12: unknown event 'handoff_faild'" in result.output
    assert f"{tmp_path / 'notifications.yaml'}:10:18: unknown channel 'fax'" in result.output
