"""Configuration checked before it bites: every file and the environment in one pass.

``tasuki check-config`` and every long-running process run the same preflight: all mistakes of
tasuki.yaml, the rules, KPI and recordings files at once, each at FILE:LINE:COL; the variables
the configured CRM and receivers need; no database touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from tasuki.cli import main
from tasuki.errors import ConfigError
from tasuki.preflight import CHECK_CONFIG, WORKER, checked_settings, preflight
from tasuki.settings import builtin_path, load_settings
from tests.services import fresh_database

BASE = builtin_path("tasuki.yaml").read_text(encoding="utf-8")

RULES = """\
rule_sets:
  - boundary: IS→FS
    rules:
      - id: is-fs.notes
        check: required
        field: deal.hearing_notes
        severity: error
        message: ヒアリング内容がありません
"""

KPIS = builtin_path("kpis/default.yaml").read_text(encoding="utf-8")
"""The admin's KPI file: a copy of the shipped one (the shipped notifications name its KPIs)."""


@pytest.fixture(autouse=True)
def no_tasuki_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: nothing of the developer's own TASUKI_* environment."""
    for name in list(os.environ):
        if name.startswith("TASUKI_"):
            monkeypatch.delenv(name)


class Org:
    """An admin's config folder: tasuki.yaml with its own rules and KPI files."""

    def __init__(self, folder: Path, changes: dict[str, str] | None = None) -> None:
        self.folder = folder
        text = BASE.replace("rules: [builtin:rules/default.yaml]", "rules: [rules.yaml]")
        text = text.replace("kpis: [builtin:kpis/default.yaml]", "kpis: [kpis.yaml]")
        for old, new in (changes or {}).items():
            assert old in text, old
            text = text.replace(old, new, 1)
        self.files = {"tasuki.yaml": text, "rules.yaml": RULES, "kpis.yaml": KPIS}
        self.write()

    def change(self, name: str, old: str, new: str) -> None:
        assert old in self.files[name], old
        self.files[name] = self.files[name].replace(old, new, 1)
        self.write()

    def write(self) -> None:
        for name, content in self.files.items():
            (self.folder / name).write_text(content, encoding="utf-8")

    def at(self, name: str, needle: str) -> str:
        """``FILE:LINE:COL`` of the first ``needle`` in file ``name``."""
        for number, line in enumerate(self.files[name].splitlines(), 1):
            if needle in line:
                return f"{self.folder / name}:{number}:{line.index(needle) + 1}"
        raise AssertionError(f"{needle!r} not in {name}")

    @property
    def env(self) -> dict[str, str]:
        return {
            "TASUKI_CONFIG": str(self.folder / "tasuki.yaml"),
            "TASUKI_DATA_DIR": str(self.folder / "data"),
            "TASUKI_WEBHOOK_SECRET": "s",
        }


def _check(org: Org, *args: str, **env: str) -> Result:
    return CliRunner().invoke(main, ["check-config", *args], env={**org.env, **env})


def _problems(result: Result) -> list[str]:
    return [ln for ln in result.output.splitlines() if ln.startswith(("/", "environment:"))]


def test_seven_mistakes_in_three_files_are_reported_in_one_run(tmp_path: Path) -> None:
    org = Org(
        tmp_path,
        {
            "timezone: Asia/Tokyo": "timezone: Mars/Olympus",
            'kpis_closed: "45 2 * * *"': 'kpis_closed: "45 25 * * *"',
        },
    )
    org.files["tasuki.yaml"] += "queue_nme: tasuki\n"
    org.change("rules.yaml", "deal.hearing_notes", "deal.hearing_nots")
    org.files["rules.yaml"] += (
        "      - id: is-fs.budget\n"
        "        check: requird\n"
        "        field: deal.budget\n"
        "        severity: error\n"
        "        message: 予算がありません\n"
    )
    org.change("kpis.yaml", "kind: count", "kind: cuont")
    org.change("kpis.yaml", "events: {handoffs: IS→FS}", "events: {handoffs: IS→XS}")
    org.write()
    result = _check(org)
    assert result.exit_code == 2
    expected = {
        org.at("tasuki.yaml", "Mars/Olympus"): "unknown timezone 'Mars/Olympus'",
        org.at("tasuki.yaml", '"45 25 * * *"'): "schedules.kpis_closed: Value error, '45 25",
        org.at("tasuki.yaml", "queue_nme"): "queue_nme: unknown setting",
        org.at("rules.yaml", "deal.hearing_nots"): "unknown field deal.hearing_nots",
        org.at("rules.yaml", "requird"): "unknown check type 'requird'",
        org.at("kpis.yaml", "cuont"): "kpis.0.kind: Input should be",
        org.at("kpis.yaml", "IS→XS"): "unknown boundary 'IS→XS'",
    }
    problems = _problems(result)
    assert len(problems) == 7, result.output
    for place, message in expected.items():
        assert any(p.startswith(f"{place}: ") and message in p for p in problems), (place, message)
    assert "7 problem(s)" in result.output


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("45 25 * * *", "out of range"),
        ("45 2 * *", "has 4 fields; a cron expression has 5"),
        ("*/10 * * * * *", "has 6 fields"),
        ("0 0 31 2 *", "failed to find next date"),
        ("every night", "has 2 fields"),
    ],
)
def test_a_bad_cron_expression_is_named_at_its_line(
    tmp_path: Path, cron: str, message: str
) -> None:
    org = Org(tmp_path, {'kpis_closed: "45 2 * * *"': f'kpis_closed: "{cron}"'})
    with pytest.raises(ConfigError) as err:
        checked_settings(CHECK_CONFIG, org.env)
    [problem] = err.value.problems
    place = org.at("tasuki.yaml", f'"{cron}"')
    assert str(problem).startswith(f"{place}: schedules.kpis_closed")
    assert message in problem.message


def test_a_mistake_in_the_objects_still_lets_yaml_mistakes_elsewhere_show(tmp_path: Path) -> None:
    # A wrong boundary id: the rules and KPI files cannot be checked against the boundaries,
    # but a YAML syntax error in them is still reported, in the same run.
    org = Org(tmp_path, {"  - id: MK→IS": "  - id: MK→XX"})
    org.change("rules.yaml", "severity: error", "severity: [error")
    report = preflight(CHECK_CONFIG, org.env)
    shown = [str(p) for p in report.problems]
    assert shown[0].startswith(f"{org.at('tasuki.yaml', 'MK→XX')}: ")
    assert any(p.startswith(f"{tmp_path / 'rules.yaml'}:") and "YAML syntax" in p for p in shown)
    assert len(shown) == 2, shown
    assert any("YAML only" in note for note in report.notes)
    assert report.settings is None


def test_an_unknown_key_inside_the_boundaries_hides_nothing_else(tmp_path: Path) -> None:
    org = Org(tmp_path, {"    sender: owner\n": "    sender: owner\n    sendr: owner\n"})
    org.change("rules.yaml", "check: required", "check: requird")
    report = preflight(CHECK_CONFIG, org.env)
    assert [str(p).split(": ", 1)[0] for p in sorted(report.problems)] == [
        org.at("rules.yaml", "requird"),
        org.at("tasuki.yaml", "sendr"),
    ]
    assert report.notes == [n for n in report.notes if "YAML only" not in n]


def test_a_broken_recordings_file_is_in_the_same_pass(tmp_path: Path) -> None:
    org = Org(tmp_path, {'kpis_closed: "45 2 * * *"': 'kpis_closed: "nightly"'})
    (tmp_path / "recordings.yaml").write_text("miitel:\n  token_headr: X-Token\n", "utf-8")
    result = _check(org)
    assert result.exit_code == 2
    assert f"{tmp_path / 'recordings.yaml'}:2:3: miitel.token_headr: unknown setting" in (
        result.output
    )
    assert len(_problems(result)) == 2, result.output


def test_a_broken_notifications_file_is_in_the_same_pass(tmp_path: Path) -> None:
    org = Org(
        tmp_path,
        {
            "timezone: Asia/Tokyo": "timezone: Asia/Tokio",
            "notifications: [builtin:notifications.yaml]": "notifications: [notifications.yaml]",
        },
    )
    shipped = builtin_path("notifications.yaml").read_text(encoding="utf-8")
    org.files["notifications.yaml"] = shipped.replace(
        "event: handoff_failed", "event: handoff_faild", 1
    )
    org.write()
    result = _check(org)
    assert result.exit_code == 2
    problems = _problems(result)
    assert problems[0].startswith(f"{org.at('notifications.yaml', 'handoff_faild')}: ")
    assert problems[1].startswith(f"{org.at('tasuki.yaml', 'Asia/Tokio')}: ")
    assert len(problems) == 2, result.output


@pytest.mark.parametrize(
    ("crm", "env", "missing"),
    [
        (
            "salesforce",
            {},
            [
                "TASUKI_SALESFORCE_USERNAME",
                "TASUKI_SALESFORCE_PASSWORD",
                "TASUKI_SALESFORCE_ORG_ID",
            ],
        ),
        (
            "salesforce",
            {"TASUKI_SALESFORCE_CONSUMER_KEY": "k", "TASUKI_SALESFORCE_ORG_ID": "00D"},
            ["TASUKI_SALESFORCE_USERNAME", "TASUKI_SALESFORCE_PRIVATE_KEY_FILE"],
        ),
        (
            "hubspot",
            {},
            ["TASUKI_HUBSPOT_ACCESS_TOKEN", "TASUKI_HUBSPOT_CLIENT_SECRET", "TASUKI_PUBLIC_URL"],
        ),
        (
            "hubspot",
            {
                "TASUKI_HUBSPOT_CLIENT_ID": "c",
                "TASUKI_HUBSPOT_CLIENT_SECRET": "s",
                "TASUKI_PUBLIC_URL": "https://t.example.com",
            },
            ["TASUKI_HUBSPOT_REFRESH_TOKEN"],
        ),
        ("local", {"TASUKI_WEBHOOK_SECRET": ""}, ["TASUKI_WEBHOOK_SECRET"]),
    ],
)
def test_a_missing_credential_is_one_kind_of_problem_whichever_the_crm(
    tmp_path: Path, crm: str, env: dict[str, str], missing: list[str]
) -> None:
    org = Org(tmp_path, {"crm: local ": f"crm: {crm} "})
    result = _check(org, **env)
    assert result.exit_code == 2
    problems = _problems(result)
    assert sorted(p.split(" is not set")[0] for p in problems) == sorted(
        f"environment:1:1: {name}" for name in missing
    ), result.output


def test_receivers_in_use_need_their_secrets(tmp_path: Path) -> None:
    org = Org(tmp_path)
    org.files["tasuki.yaml"] += "receivers: [miitel, zoom]\n"
    org.write()
    result = _check(org, TASUKI_MIITEL_TOKEN="m")
    assert result.exit_code == 2
    assert _problems(result) == [
        "environment:1:1: TASUKI_ZOOM_SECRET_TOKEN is not set: receivers lists zoom"
    ]
    assert _check(org, TASUKI_MIITEL_TOKEN="m", TASUKI_ZOOM_SECRET_TOKEN="z").exit_code == 0


def test_check_config_needs_no_database_and_creates_nothing(tmp_path: Path) -> None:
    org = Org(tmp_path)
    unreachable = "postgresql://u:pw-that-must-not-show@127.0.0.1:1/x"
    result = _check(org, TASUKI_DATABASE_URL=unreachable)
    assert result.exit_code == 0, result.output
    assert "ok: " in result.output and str(tmp_path / "rules.yaml") in result.output
    result = _check(org)  # the default SQLite store in the data folder
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "data").exists()


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A PostgreSQL database of its own, with no table."""
    with fresh_database("tasuki_preflight") as url:
        yield url


def test_with_services_reports_pending_migrations_and_applies_none(
    tmp_path: Path, empty_database: str, redis_url: str
) -> None:
    org = Org(tmp_path)
    # As hosting services hand URLs out: postgres://, which tasuki maps to its driver.
    url = empty_database.replace("postgresql+psycopg://", "postgres://")
    result = _check(org, "--with-services", TASUKI_DATABASE_URL=url, TASUKI_REDIS_URL=redis_url)
    assert result.exit_code == 0, result.output
    assert "migration(s) pending (0001_core_tables, " in result.output
    assert f"redis: {redis_url} answers" in result.output
    assert "crm: the embedded CRM" in result.output
    engine = create_engine(empty_database)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_with_services_names_an_unreachable_store_and_redis(tmp_path: Path) -> None:
    org = Org(tmp_path)
    result = _check(
        org,
        "--with-services",
        TASUKI_DATABASE_URL="postgresql://u:pw-that-must-not-show@127.0.0.1:1/x",
        TASUKI_REDIS_URL="redis://:redis-pw-that-must-not-show@127.0.0.1:1/0",
    )
    assert result.exit_code == 2
    problems = _problems(result)
    assert len(problems) == 2, result.output
    assert problems[0].startswith(
        "environment:1:1: TASUKI_DATABASE_URL: store at "
        "postgresql+psycopg://u:***@127.0.0.1:1/x unreachable"
    )
    assert problems[1].startswith(
        "environment:1:1: TASUKI_REDIS_URL: Redis at redis://:***@127.0.0.1:1/0 unreachable"
    )
    assert "must-not-show" not in result.output


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_postgres_urls_as_hosts_give_them_work(
    tmp_path: Path, postgres_url: str, scheme: str
) -> None:
    url = postgres_url.replace("postgresql+psycopg://", f"{scheme}://")
    settings = load_settings({"TASUKI_DATABASE_URL": url})
    assert settings.database_url == postgres_url
    result = CliRunner().invoke(main, ["db", "upgrade"], env={"TASUKI_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert f"store at {make_url(postgres_url).render_as_string()}" in result.output


def test_an_unusable_database_url_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    result = _check(Org(tmp_path), TASUKI_DATABASE_URL="mysql://u:secret@db/x")
    assert result.exit_code == 2
    assert "TASUKI_DATABASE_URL: mysql://u:***@db/x" in result.output
    assert "Traceback" not in result.output


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TASUKI_")}
    return subprocess.run(
        [sys.executable, "-m", "tasuki", *command],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_bad_cron_is_refused_before_the_scheduler_starts(tmp_path: Path, redis_url: str) -> None:
    org = Org(tmp_path, {'kpis_closed: "45 2 * * *"': 'kpis_closed: "45 2 * *"'})
    org.change("rules.yaml", "check: required", "check: requird")
    done = _run(["scheduler"], {**org.env, "TASUKI_REDIS_URL": redis_url})
    assert done.returncode == 2, done.stderr
    place = org.at("tasuki.yaml", '"45 2 * *"')
    assert f"{place}: schedules.kpis_closed: Value error, '45 2 * *' has 4 fields" in done.stderr
    assert f"{org.at('rules.yaml', 'requird')}: unknown check type" in done.stderr
    assert "Traceback" not in done.stderr and "2 problem(s); refusing to start." in done.stderr


@pytest.mark.parametrize("command", [["serve"], ["worker", "--burst"], ["scheduler"]])
def test_every_process_lists_every_problem_and_refuses_to_start(
    tmp_path: Path, command: list[str]
) -> None:
    org = Org(tmp_path, {"crm: local ": "crm: salesforce "})
    org.change("rules.yaml", "check: required", "check: requird")
    env = {**org.env, "TASUKI_WEBHOOK_SECRET": ""}  # and no TASUKI_REDIS_URL
    done = _run(command, env)
    assert done.returncode == 2, done.stderr
    assert f"{org.at('rules.yaml', 'requird')}: unknown check type" in done.stderr
    assert "environment:1:1: TASUKI_REDIS_URL is not set" in done.stderr
    # Each process is refused for what it needs: the CRM's sign-in for those that call it, the
    # receivers' secrets for the one that receives.
    assert ("TASUKI_SALESFORCE_PASSWORD is not set" in done.stderr) == (command[0] != "scheduler")
    assert ("TASUKI_WEBHOOK_SECRET is not set" in done.stderr) == (command[0] == "serve")
    assert not (tmp_path / "data").exists()  # refused before the store was opened


def test_the_worker_preflight_passes_with_what_a_worker_needs(tmp_path: Path) -> None:
    org = Org(tmp_path)
    env = {**org.env, "TASUKI_REDIS_URL": "redis://127.0.0.1:6379/0", "TASUKI_WEBHOOK_SECRET": ""}
    assert checked_settings(WORKER, env).redis_url == "redis://127.0.0.1:6379/0"


def test_every_variable_a_check_can_name_is_in_the_readme_table() -> None:
    from tasuki.providers import HubSpotSettings, SalesforceSettings

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `TASUKI_")]
    variables = [
        *SalesforceSettings.variables(),
        *HubSpotSettings.variables(),
        "TASUKI_ZOOM_SECRET_TOKEN",
        "TASUKI_MIITEL_TOKEN",
        "TASUKI_PUBLIC_URL",
        "TASUKI_WEBHOOK_SECRET",
        "TASUKI_DATABASE_URL",
        "TASUKI_REDIS_URL",
    ]
    for variable in variables:
        assert any(f"`{variable}`" in row for row in rows), variable


PEOPLE = """\
people:
  - {person: emma@example.com, department: IS, to: 2026-10-16}
  - {person: emma@example.com, department: Sales, from: 2026-10-16}
  - {person: Ghost, department: FS, from: 2026-10-16}
"""


def test_the_people_file_is_checked_with_the_others_and_its_people_against_the_store(
    tmp_path: Path,
) -> None:
    from tasuki.store.db import open_store
    from tasuki.store.models import Person

    org = Org(tmp_path)
    org.files["people.yaml"] = PEOPLE
    org.write()
    result = _check(org)
    assert result.exit_code == 2
    assert _problems(result) == [
        f"{org.at('people.yaml', 'Sales')}: unknown department 'Sales'; known: MK, IS, FS, CS, "
        "Marketing, Inside Sales, Field Sales, Customer Success"
    ]
    org.change("people.yaml", "department: Sales", "department: Field Sales")
    assert _check(org).exit_code == 0
    # With the services: each person named must be one the store knows.
    url = f"sqlite:///{tmp_path / 'tasuki.db'}"
    store = open_store(url)
    with store.session() as s:
        s.add(Person(system="local", user_id="005A", name="Emma Clarke", email="emma@example.com"))
    store.engine.dispose()
    result = _check(org, "--with-services", TASUKI_DATABASE_URL=url)
    assert result.exit_code == 2
    problems = _problems(result)
    assert len(problems) == 1 and problems[0].startswith(
        f"{org.at('people.yaml', '{person: Ghost')}: unknown person 'Ghost'"
    )


def test_the_alarms_file_is_checked_with_the_others(tmp_path: Path) -> None:
    org = Org(tmp_path)
    org.files["alarms.yaml"] = (
        "alarms:\n  - id: mk\n    department: MK\n    own: mk_mqls\n    neighbour: no_such_kpi\n"
    )
    org.write()
    result = _check(org)
    assert result.exit_code == 2
    (problem,) = _problems(result)
    assert problem.startswith(f"{org.at('alarms.yaml', 'no_such_kpi')}: ")
    assert "no_such_kpi" in problem
    org.change("alarms.yaml", "no_such_kpi", "mk_mql_to_meeting")
    assert _check(org).exit_code == 0
