"""The Salesforce connector against the emulator: sign-in, reads, history, quota, errors."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from pydantic import SecretStr

from connectors.salesforce import SalesforceConnector, SalesforceOptions, connector_from_settings
from connectors.salesforce_records import ChangeCursor, bulk_error
from tasuki.cli import main
from tasuki.crm import Connector, RecordWrite
from tasuki.errors import ConfigError, CrmAuthError, CrmRateLimited, CrmRequestError, CrmUnavailable
from tasuki.providers import SalesforceSettings
from tasuki.settings import Settings, builtin_path
from tasuki.writeback import BulkWriter
from tests.salesforce.sf_emulator import Org, RunningEmulator
from tests.salesforce.sf_testorg import CONSUMER_KEY, PASSWORD, TOKEN, USERNAME

AT = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def _leads(org: Org, n: int, *, at: datetime = AT, **values: object) -> list[str]:
    return [
        org.upsert("Lead", None, {"Status": "Open", "Company": f"Co {i}", **values}, at=at)
        for i in range(n)
    ]


def test_it_is_a_connector_and_a_bulk_writer(connector: SalesforceConnector) -> None:
    assert isinstance(connector, Connector)
    assert isinstance(connector, BulkWriter)
    assert (connector.system, connector.read_batch_size, connector.write_batch_size) == (
        "salesforce",
        2000,
        200,
    )
    assert connector.bulk_write_threshold == 2000


@pytest.mark.parametrize("flow", ["jwt", "password", "session"])
def test_each_auth_flow_signs_in_and_reads(
    flow: str,
    org: Org,
    options: SalesforceOptions,
    http: requests.Session,
    private_key_file: tuple[Path, bytes],
    emulator: RunningEmulator,
) -> None:
    ids = _leads(org, 3)
    if flow == "jwt":
        c = SalesforceConnector.with_jwt(
            SecretStr(CONSUMER_KEY), USERNAME, str(private_key_file[0]), options, session=http
        )
    elif flow == "password":
        c = SalesforceConnector.with_password(
            USERNAME, SecretStr(PASSWORD), SecretStr(TOKEN), options, session=http
        )
    else:
        org.tokens["00Dgiven!session"] = "005000000000001AAA"
        c = SalesforceConnector.with_session(
            SecretStr("00Dgiven!session"), emulator.url, options, session=http
        )
    assert [r.id for r in c.fetch("Lead", ids, ["Status"])] == ids
    assert org.calls["login"] == (0 if flow == "session" else 1)


def test_a_wrong_password_is_an_auth_error(
    options: SalesforceOptions, http: requests.Session
) -> None:
    c = SalesforceConnector.with_password(
        USERNAME, SecretStr("wrong"), SecretStr(TOKEN), options, session=http
    )
    with pytest.raises(CrmAuthError, match="INVALID_LOGIN"):
        c.users(["Name"])
    assert "wrong" not in repr(c.auth)


def test_an_expired_session_is_renewed_once_and_the_call_retried(
    org: Org, connector: SalesforceConnector
) -> None:
    ids = _leads(org, 2)
    connector.fetch("Lead", ids, ["Status"])
    org.expire_sessions()
    assert len(connector.fetch("Lead", ids, ["Status"])) == 2
    assert (org.calls["login"], connector.logins) == (2, 2)


def test_a_given_session_that_expires_is_an_auth_error(
    org: Org, options: SalesforceOptions, http: requests.Session, emulator: RunningEmulator
) -> None:
    c = SalesforceConnector.with_session(
        SecretStr("00Dgone!x"), emulator.url, options, session=http
    )
    with pytest.raises(CrmAuthError) as err:
        c.users(["Name"])
    assert err.value.status == 401 and "INVALID_SESSION_ID" in err.value.body


def test_fetch_reads_2000_ids_a_call_and_leaves_out_missing_and_deleted(
    org: Org, connector: SalesforceConnector
) -> None:
    ids = _leads(org, 4100)
    org.delete("Lead", ids[7])
    got = connector.fetch("Lead", [*ids, "00Q999999999999AAA"], ["Status", "Company"])
    assert len(got) == 4099 and ids[7] not in {r.id for r in got}
    assert got[0].fields == {"Status": "Open", "Company": "Co 0"}
    assert got[0].modstamp == "2026-11-02T01:00:00.000+0000"
    assert connector.calls["read"] == org.calls["retrieve"] == 3


def _drain(
    connector: SalesforceConnector, cursor: str | None, fields: list[str]
) -> tuple[list[str], list[str], str | None, int]:
    ids: list[str] = []
    deleted: list[str] = []
    pages = 0
    while True:
        page = connector.changes("Lead", cursor, fields)
        pages += 1
        ids += [r.id for r in page.records if not r.deleted]
        deleted += [r.id for r in page.records if r.deleted]
        cursor = page.cursor
        if not page.more:
            return ids, deleted, cursor, pages


def test_full_then_incremental_sync_with_deletes_and_shared_timestamps(
    org: Org, make_connector: Callable[..., SalesforceConnector]
) -> None:
    connector = make_connector(query_batch_size=500)
    # 3,000 leads sharing only 3 timestamps: pages end in the middle of a timestamp.
    ids = []
    for k in range(3):
        ids += _leads(org, 1000, at=AT + timedelta(milliseconds=k))
    seen, deleted, cursor, pages = _drain(connector, None, ["Status"])
    assert seen == ids and deleted == [] and pages == 6
    # Nothing changed: nothing delivered again (SOQL datetimes have whole seconds, so the
    # records of the cursor's second are read again and skipped by SystemModstamp + Id).
    assert _drain(connector, cursor, ["Status"])[:2] == ([], [])
    # Changes land in the same second as the cursor and later; deletes come back as deleted.
    later = AT + timedelta(milliseconds=500)
    for rid in ids[10:760]:
        org.upsert("Lead", rid, {"Status": "Working"}, at=later)
    for rid in ids[2000:2005]:
        org.delete("Lead", rid, at=later + timedelta(seconds=1))
    new = _leads(org, 20, at=later + timedelta(seconds=2))
    seen2, deleted2, cursor2, _ = _drain(connector, cursor, ["Status"])
    assert seen2 == ids[10:760] + new
    assert deleted2 == ids[2000:2005]
    assert connector.changes("Lead", cursor2, ["Status"]).records == []


def test_an_expired_query_locator_restarts_from_the_position(
    org: Org, make_connector: Callable[..., SalesforceConnector]
) -> None:
    connector = make_connector(query_batch_size=200)
    ids = _leads(org, 450)
    first = connector.changes("Lead", None, [])
    assert first.more and ChangeCursor.decode(first.cursor).next  # type: ignore[union-attr]
    org.cursors.clear()  # the locator expired
    rest, _, _, _ = _drain(connector, first.cursor, [])
    assert [r.id for r in first.records] + rest == ids


def test_history_reads_owner_changes_as_ids_and_stage_changes(
    org: Org, connector: SalesforceConnector
) -> None:
    is_rep = org.add_user("Ikeda IS", "Inside Sales")
    fs_rep = org.add_user("Fujii FS", "Field Sales")
    opp = org.upsert("Opportunity", None, {"OwnerId": is_rep, "StageName": "Meeting Booked"}, at=AT)
    org.upsert("Opportunity", opp, {"OwnerId": fs_rep}, at=AT + timedelta(hours=1), by=is_rep)
    org.upsert("Opportunity", opp, {"StageName": "Closed Won"}, at=AT + timedelta(days=9))
    got = connector.history("Opportunity", [opp], ["OwnerId", "StageName"])
    assert [(c.field, c.old, c.new, c.by) for c in got] == [
        ("OwnerId", is_rep, fs_rep, is_rep),
        ("StageName", "Meeting Booked", "Closed Won", "005000000000009AAA"),
    ]
    assert got[0].at == AT + timedelta(hours=1)
    assert connector.history("Opportunity", [opp], ["OwnerId"]) == got[:1]


def test_values_reach_soql_only_escaped(org: Org, connector: SalesforceConnector) -> None:
    _leads(org, 2)
    assert connector.history("Lead", ["x') OR (LeadId != 'y"], ["Status"]) == []
    with pytest.raises(ValueError, match="API name"):
        connector.changes("Lead WHERE Id != null", None, [])


def test_users(org: Org, connector: SalesforceConnector) -> None:
    rep = org.add_user("Ikeda IS", "Inside Sales")
    assert [(u.id, u.fields) for u in connector.users(["Name", "Department"])] == [
        (rep, {"Name": "Ikeda IS", "Department": "Inside Sales"})
    ]


def test_quota_is_read_from_every_response_and_defers_writes_past_the_share(
    org: Org, make_connector: Callable[..., SalesforceConnector]
) -> None:
    connector = make_connector(quota_defer_share=0.5)
    assert connector.quota is None and not connector.should_defer_writes()
    org.api_max, org.api_used = 1000, 400
    connector.users(["Name"])
    assert connector.quota is not None and (connector.quota.used, connector.quota.max) == (
        401,
        1000,
    )
    assert not connector.should_defer_writes()
    assert connector.api_usage() == (401, 1000)  # what the metrics show
    org.api_used = 600
    connector.users(["Name"])
    assert connector.should_defer_writes()


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("rate_limited", CrmRateLimited, 403),
        ("unavailable", CrmUnavailable, 503),
    ],
)
def test_faults_map_to_retryable_errors(
    org: Org, connector: SalesforceConnector, fault: str, error: type[Exception], status: int
) -> None:
    org.inject(fault, on="query")
    with pytest.raises(error) as err:
        connector.users(["Name"])
    assert getattr(err.value, "status") == status  # noqa: B009
    assert connector.users(["Name"]) == []


def test_a_slow_answer_times_out_as_unavailable(
    org: Org, make_connector: Callable[..., SalesforceConnector]
) -> None:
    connector = make_connector(timeout=0.3)
    connector.users(["Name"])
    org.inject("slow", on="query", delay=1.0)
    with pytest.raises(CrmUnavailable, match="timed out"):
        connector.users(["Name"])


def test_a_bad_field_is_a_request_error_with_salesforces_body(
    connector: SalesforceConnector,
) -> None:
    with pytest.raises(CrmRequestError) as err:
        connector.fetch("Lead", ["00Q000000000001AAA"], ["Nope__c"])
    assert err.value.status == 400 and "INVALID_FIELD" in err.value.body


def test_more_than_200_records_is_refused_before_any_call(connector: SalesforceConnector) -> None:
    with pytest.raises(ValueError, match="200"):
        connector.write("Lead", [RecordWrite(f"00Q{i:015d}", {"Status": "x"}) for i in range(201)])
    assert connector.calls.total == 0


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (
            "FIELD_CUSTOM_VALIDATION_EXCEPTION:Score must be 0-100:Tasuki_Score__c --",
            ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Score must be 0-100"),
        ),
        (
            "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --",
            ("REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]"),
        ),
        (
            "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access",
            ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access"),
        ),
        ("something odd", ("UNKNOWN_EXCEPTION", "something odd")),
    ],
)
def test_bulk_error_cells_are_split_into_code_and_message(
    cell: str, expected: tuple[str, str]
) -> None:
    assert bulk_error(cell) == expected


def test_connector_from_settings_picks_the_flow_and_signs_in(
    org: Org,
    emulator: RunningEmulator,
    settings: Settings,
    private_key_file: tuple[Path, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emulator.ca_path))
    env = {
        "TASUKI_SALESFORCE_DOMAIN": emulator.url,
        "TASUKI_SALESFORCE_USERNAME": USERNAME,
        "TASUKI_SALESFORCE_CONSUMER_KEY": CONSUMER_KEY,
        "TASUKI_SALESFORCE_PRIVATE_KEY_FILE": str(private_key_file[0]),
    }
    c = connector_from_settings(_with_env(settings, env))
    try:
        assert c.auth.__class__.__name__ == "JwtBearer"
        assert c.users(["Name"]) == []
        assert c.check_login().startswith(f"signed in to {emulator.url}")
    finally:
        c.close()
    password = {"TASUKI_SALESFORCE_USERNAME": USERNAME, "TASUKI_SALESFORCE_PASSWORD": PASSWORD}
    c = connector_from_settings(_with_env(settings, password))
    assert c.auth.__class__.__name__ == "PasswordLogin"
    c.close()
    with pytest.raises(ConfigError) as err:
        connector_from_settings(_with_env(settings, {}))
    assert [str(p).split(" is not set")[0] for p in err.value.problems] == [
        "environment:1:1: TASUKI_SALESFORCE_PASSWORD",
        "environment:1:1: TASUKI_SALESFORCE_USERNAME",
    ]


def _with_env(settings: Settings, env: dict[str, str]) -> Settings:
    """``settings`` with the Salesforce variables of ``env``, read as load_settings reads them."""
    return replace(settings, salesforce=SalesforceSettings.from_env(env))


def test_check_config_with_services_signs_in_to_the_org(
    emulator: RunningEmulator,
    private_key_file: tuple[Path, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("TASUKI_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emulator.ca_path))
    config = tmp_path / "tasuki.yaml"
    shipped = builtin_path("tasuki.yaml").read_text(encoding="utf-8")
    config.write_text(shipped.replace("crm: local ", "crm: salesforce ", 1), encoding="utf-8")
    env = {
        "TASUKI_CONFIG": str(config),
        "TASUKI_DATA_DIR": str(tmp_path / "data"),
        "TASUKI_WEBHOOK_SECRET": "s",
        "TASUKI_SALESFORCE_ORG_ID": "00D000000000001",
        "TASUKI_SALESFORCE_DOMAIN": emulator.url,
        "TASUKI_SALESFORCE_USERNAME": USERNAME,
        "TASUKI_SALESFORCE_CONSUMER_KEY": CONSUMER_KEY,
        "TASUKI_SALESFORCE_PRIVATE_KEY_FILE": str(private_key_file[0]),
    }
    ok = CliRunner().invoke(main, ["check-config", "--with-services"], env=env)
    assert ok.exit_code == 0, ok.output
    assert f"crm: salesforce signed in to {emulator.url}; API requests today: " in ok.output
    wrong = {
        **{k: v for k, v in env.items() if "CONSUMER_KEY" not in k and "KEY_FILE" not in k},
        "TASUKI_SALESFORCE_PASSWORD": "wrong horse",
    }
    refused = CliRunner().invoke(main, ["check-config", "--with-services"], env=wrong)
    assert refused.exit_code == 2
    assert "environment:1:1: TASUKI_SALESFORCE_*: salesforce sign-in failed" in refused.output
    assert "wrong horse" not in refused.output
