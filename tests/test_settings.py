from __future__ import annotations

from pathlib import Path

import pytest

from tasuki.errors import ConfigError
from tasuki.settings import builtin_path, load_settings, masked_url

BASE = builtin_path("tasuki.yaml").read_text(encoding="utf-8")


def _write(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "tasuki.yaml"
    path.write_text(text, encoding="utf-8")
    return {"TASUKI_CONFIG": str(path), "TASUKI_DATA_DIR": str(tmp_path / "data")}


def _refused(
    tmp_path: Path, old: str, new: str, line_of: str
) -> tuple[ConfigError, dict[str, str], int]:
    """The default config with ``old`` replaced by ``new``, loaded: the error it raises, the
    environment that named it, and the line holding ``line_of`` in the changed text."""
    assert old in BASE
    text = BASE.replace(old, new, 1)
    env = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if line_of in ln)
    return err.value, env, line


def test_the_embedded_default_loads() -> None:
    s = load_settings({})
    assert s.config.crm == "local"
    assert [b.id for b in s.config.boundaries] == ["MK→IS", "IS→FS", "FS→CS"]
    assert s.database_url.startswith("sqlite:///")
    assert s.redis_url is None


@pytest.mark.parametrize(
    ("old", "new", "line_of", "message"),
    [
        ("crm: local ", "crm: oracle ", "crm: oracle", "crm: Input should be"),
        ("timezone: Asia/Tokyo", "timezone: Mars/Olympus", "timezone: Mars", "unknown timezone"),
        ("  - id: MK→IS", "  - id: MK→XX", "id: MK→XX", "boundary id 'MK→XX'"),
        (
            "trigger: {field: stage, becomes: Closed Won}",
            "trigger: {field: stag, becomes: Closed Won}",
            "field: stag",
            "deal.stag is not mapped",
        ),
        ('workday_end: "18:00"', 'workday_end: "08:00"', "workday_end", "after workday_start"),
        (
            "  user_field: department",
            "  user_field: dept",
            "user_field: dept",
            "'dept' is not mapped",
        ),
        ("holidays: JP ", "holidays: XX ", "holidays: XX", "country code 'XX'"),
        (
            "extra_holidays: []",
            "extra_holidays: [2026-13-01]",
            "extra_holidays",
            "month must be in 1..12",
        ),
    ],
)
def test_a_wrong_value_names_file_line_and_column(
    tmp_path: Path, old: str, new: str, line_of: str, message: str
) -> None:
    err, env, expected_line = _refused(tmp_path, old, new, line_of)
    problem = err.problems[0]
    assert problem.file == env["TASUKI_CONFIG"]
    assert problem.line == expected_line
    assert message in problem.message
    assert str(problem).startswith(f"{env['TASUKI_CONFIG']}:{expected_line}:{problem.column}: ")


def test_unknown_setting_and_yaml_syntax(tmp_path: Path) -> None:
    env = _write(tmp_path, BASE.replace("crm: local", "crm: local\ncrn: typo", 1))
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert "crn: unknown setting" in str(err.value)
    env = _write(tmp_path, "crm: [local\n")
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert "YAML syntax" in str(err.value) and ":2:1:" in str(err.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = BASE.replace("crm: local ", "crm: oracle ", 1).replace(
        "timezone: Asia/Tokyo", "timezone: Nowhere/City", 1
    )
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, text))
    assert len(err.value.problems) == 2


def test_secrets_never_print(tmp_path: Path) -> None:
    s = load_settings(
        {"TASUKI_DATA_DIR": str(tmp_path), "TASUKI_WEBHOOK_SECRET": "hunter2-very-secret"}
    )
    assert "hunter2" not in repr(s)
    assert "hunter2" not in str(s.webhook_secret)
    assert s.webhook_secret is not None
    assert s.webhook_secret.get_secret_value() == "hunter2-very-secret"


DB_PASSWORD, REDIS_PASSWORD = "s3cr3t-pw", "r3d1s-pw"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            f"postgresql+psycopg://u:{DB_PASSWORD}@127.0.0.1/x",
            "postgresql+psycopg://u:***@127.0.0.1/x",
        ),
        (f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("rediss://user:p%40ss@h:6380/1", "rediss://user:***@h:6380/1"),
        (
            "postgresql://u@h/x?password=pw&sslmode=require",
            "postgresql://u@h/x?password=***&sslmode=require",
        ),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("sqlite:////srv/tasuki/tasuki.db", "sqlite:////srv/tasuki/tasuki.db"),
    ],
)
def test_a_url_prints_without_its_password(url: str, shown: str) -> None:
    assert masked_url(url) == shown


def test_settings_print_their_urls_without_passwords(tmp_path: Path) -> None:
    db = f"postgresql+psycopg://u:{DB_PASSWORD}@127.0.0.1/x"
    redis = f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0"
    s = load_settings(
        {"TASUKI_DATA_DIR": str(tmp_path), "TASUKI_DATABASE_URL": db, "TASUKI_REDIS_URL": redis}
    )
    for printed in (repr(s), str(s), f"{s}"):
        assert DB_PASSWORD not in printed and REDIS_PASSWORD not in printed
        assert "database_url='postgresql+psycopg://u:***@127.0.0.1/x'" in printed
        assert "redis_url='redis://:***@127.0.0.1:6379/0'" in printed
    assert (s.database_url, s.redis_url) == (db, redis)  # what the drivers are handed is intact


def test_cli_output_never_shows_a_url_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    from click.testing import CliRunner
    from sqlalchemy.engine import make_url

    from tasuki.cli import main

    monkeypatch.delenv("TASUKI_CONFIG", raising=False)
    monkeypatch.setenv("TASUKI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TASUKI_WEBHOOK_SECRET", "s")
    monkeypatch.setenv("TASUKI_REDIS_URL", f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0")
    # The test server trusts local connections, so a password in the URL is simply not asked for.
    reachable = make_url(postgres_url).set(password=DB_PASSWORD)
    unreachable = f"postgresql+psycopg://u:{DB_PASSWORD}@127.0.0.1/x"
    runs = []
    for url, command in [
        (reachable.render_as_string(hide_password=False), ["db", "upgrade"]),
        (unreachable, ["db", "upgrade"]),
        (unreachable, ["check-config"]),  # needs no database
        (unreachable, ["check-config", "--with-services"]),
    ]:
        monkeypatch.setenv("TASUKI_DATABASE_URL", url)
        runs.append(CliRunner().invoke(main, command))
    assert [r.exit_code for r in runs] == [0, 1, 0, 2], [r.output for r in runs]
    assert reachable.render_as_string(hide_password=True) in runs[0].output
    assert "store at postgresql+psycopg://u:***@127.0.0.1/x unreachable" in runs[1].output
    assert "store at postgresql+psycopg://u:***@127.0.0.1/x unreachable" in runs[3].output
    for r in runs:
        assert DB_PASSWORD not in r.output and REDIS_PASSWORD not in r.output


@pytest.mark.parametrize(
    ("old", "new", "line_of", "message"),
    [
        (
            "    rows: kpi_row",
            "    rows: kpi_rowz",
            "rows: kpi_rowz",
            "unknown object 'kpi_rowz'",
        ),
        (
            "      external_id: key\n      fields:\n        key: Tasuki_Key__c",
            "      fields:\n        key: Tasuki_Key__c",
            "salesforce: &sf_kpi_row",
            "objects.kpi_row.local needs external_id",
        ),
        (
            "      external_id: key\n      fields:\n        key: Tasuki_Key__c",
            "      external_id: keys\n      fields:\n        key: Tasuki_Key__c",
            "external_id: keys",
            "external_id 'keys' is not one of kpi_row's fields",
        ),
        (
            "        kpi: KPI_Id__c\n",
            "",
            "rows: kpi_row",
            "objects.kpi_row must map kpi",
        ),
        (
            "        label: KPI_Label__c\n",
            "        lable: KPI_Label__c\n",
            "lable: KPI_Label__c",
            "kpi_row.lable is not a KPI row field",
        ),
    ],
)
def test_a_wrong_kpi_row_mapping_names_its_line(
    tmp_path: Path, old: str, new: str, line_of: str, message: str
) -> None:
    err, _, expected_line = _refused(tmp_path, old, new, line_of)
    problem = err.problems[0]
    assert (problem.line, len(err.problems)) == (expected_line, 1), str(err)
    assert message in problem.message


def test_kpi_rows_are_written_never_synced() -> None:
    from tasuki.mapping import Mapper

    s = load_settings({})
    mapper = Mapper(s.config)
    assert "kpi_row" not in mapper.objects and s.config.write_only_objects == {"kpi_row"}
    assert mapper.logical_object("Tasuki_KPI__c") is None  # its change notices are ignored
    assert mapper.key_field("kpi_row") == "Tasuki_Key__c" and mapper.key_field("lead") is None
    assert "tasuki_first_touch_hours" in mapper.written_fields("lead")
