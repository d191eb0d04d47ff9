"""The HubSpot connector against the emulator: reads, history, owners, writes, errors, auth."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from connectors.hubspot import HubSpotConnector, HubSpotOptions, connector_from_settings
from connectors.hubspot_api import MAX_RATE_LIMIT_RETRIES, RETRY_WAITS
from tasuki.cli import main
from tasuki.crm import Connector, RecordWrite
from tasuki.errors import (
    ConfigError,
    CrmAuthError,
    CrmRateLimited,
    CrmRequestError,
    CrmUnavailable,
)
from tasuki.providers import HubSpotSettings
from tasuki.settings import Settings, builtin_path
from tests.hubspot.hs_emulator import HubSpotEmulator
from tests.hubspot.support import APP_ID, TOKEN, ConnectorFactory, EmulatorFactory, quick_limits

T0 = 1_790_000_000_000


def test_it_is_a_connector_with_hubspots_batch_sizes(hubspot: HubSpotConnector) -> None:
    assert isinstance(hubspot, Connector)
    assert (hubspot.system, hubspot.read_batch_size, hubspot.write_batch_size) == (
        "hubspot",
        100,
        100,
    )


def test_fetch_reads_100_ids_a_call_typed_and_leaves_out_unknown_ids(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    ids = [
        emulator.create(
            "deals", {"dealname": f"D{i}", "amount": 1000 + i, "dealstage": "closedwon"}
        )
        for i in range(250)
    ]
    records = hubspot.fetch("deals", [*ids, "999999"], ["dealname", "amount", "dealstage"])
    assert len(records) == 250
    first = next(r for r in records if r.id == ids[0])
    assert first.fields == {"dealname": "D0", "amount": 1000, "dealstage": "Closed Won"}
    assert emulator.calls["batch/read"] == 3


def test_history_is_oldest_first_with_stable_ids_50_records_a_call(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    ids = [
        emulator.create(
            "contacts", {"hubspot_owner_id": "11"}, at=T0 + i, source=("CRM_UI", None, "7")
        )
        for i in range(60)
    ]
    emulator.update("contacts", ids[0], {"hubspot_owner_id": "22"}, at=T0 + 5000)
    emulator.update("contacts", ids[0], {"hubspot_owner_id": "22"}, at=T0 + 6000)
    changes = hubspot.history("contacts", ids, ["hubspot_owner_id"])
    assert emulator.calls["batch/read"] == 2
    mine = [c for c in changes if c.record_id == ids[0]]
    assert [(c.old, c.new) for c in mine] == [(None, "11"), ("11", "22")]
    assert mine[0].by == "7" and mine[1].at == datetime.fromtimestamp((T0 + 5000) / 1000, UTC)
    again = hubspot.history("contacts", ids, ["hubspot_owner_id"])
    assert [c.id for c in again] == [c.id for c in changes]
    assert changes == sorted(changes, key=lambda c: c.at)


def test_users_are_owners_with_their_team_as_department(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    for i in range(130):
        team = "Inside Sales" if i % 2 else "Field Sales"
        emulator.add_owner(str(100 + i), "Rep", str(i), f"rep{i}@example.com", team)
    emulator.add_owner("999", "No", "Team", "nobody@example.com", None)
    users = hubspot.users(["name", "email", "team"])
    assert len(users) == 131 and emulator.calls["owners"] == 2
    assert users[1].fields == {"name": "Rep 1", "email": "rep1@example.com", "team": "Inside Sales"}
    assert users[-1].fields["team"] is None
    assert [u.id for u in hubspot.fetch("owners", ["101"], ["team"])] == ["101"]


def test_write_keeps_successes_of_a_207_and_records_each_error(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    a = emulator.create("contacts", {"email": "a@example.com"})
    b = emulator.create("contacts", {"email": "b@example.com"})
    results = hubspot.write(
        "contacts",
        [
            RecordWrite(a, {"tasuki_score": 80, "tasuki_verdict": "MK→IS passed"}),
            RecordWrite("424242424", {"tasuki_score": 10}),
            RecordWrite(b, {"no_such_property": "x"}),
        ],
    )
    assert [(r.record_id, r.ok, r.error_code) for r in results] == [
        (a, True, ""),
        ("424242424", False, "OBJECT_NOT_FOUND"),
        (b, False, "VALIDATION_ERROR"),
    ]
    assert results[2].message == 'Property "no_such_property" does not exist'
    assert emulator.get("contacts", a)["tasuki_score"] == "80"  # type: ignore[index]
    assert hubspot.calls["write"] == 1
    assert emulator.get("contacts", a)["tasuki_verdict"] == "MK→IS passed"  # type: ignore[index]


def test_a_batch_refused_whole_is_split_until_the_bad_record_stands_alone(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    ids = [emulator.create("deals", {"dealname": str(i)}) for i in range(8)]
    writes = [RecordWrite(i, {"tasuki_score": 1}) for i in ids]
    writes[5] = RecordWrite(ids[3], {"tasuki_score": 2})  # a duplicate id: HubSpot refuses all
    results = hubspot.write("deals", writes)
    assert [r.ok for r in results].count(True) == 8
    assert hubspot.calls["write"] == 3  # the batch, then its two halves


def test_owners_take_no_writes(hubspot: HubSpotConnector) -> None:
    results = hubspot.write("owners", [RecordWrite("1", {"tasuki_own_kpi": 1.0})])
    assert results[0].error_code == "READ_ONLY_OBJECT" and hubspot.calls.total == 0


@pytest.mark.parametrize("kind", ["500", "502", "503", "timeout"])
def test_5xx_and_timeouts_are_retried_posts_included(
    make_emulator: EmulatorFactory, make_connector: ConnectorFactory, kind: str
) -> None:
    emu = make_emulator(timeout_delay=0.5)
    connector = make_connector(emu, sleep=lambda s: None, timeout=0.2)
    rid = emu.create("contacts", {"email": "a@example.com"})
    emu.inject(kind, 2, route="batch/update")
    results = connector.write("contacts", [RecordWrite(rid, {"tasuki_score": 5})])
    assert results[0].ok and emu.get("contacts", rid)["tasuki_score"] == "5"  # type: ignore[index]
    assert connector.calls["write"] == 3
    assert connector.api.retries["unavailable"] == 2


def test_5xx_that_never_ends_raises_crm_unavailable(
    emulator: HubSpotEmulator, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(emulator, sleep=lambda s: None)
    emulator.inject("503", 100)
    with pytest.raises(CrmUnavailable) as exc:
        connector.fetch("contacts", ["1"], ["email"])
    assert exc.value.status == 503 and connector.calls["read"] == 6


def test_errors_map_to_tasuki_errors_with_hubspots_body(
    emulator: HubSpotEmulator, make_connector: ConnectorFactory
) -> None:
    with pytest.raises(CrmAuthError) as auth:
        make_connector(emulator, token="expired").fetch("contacts", ["1"], ["email"])
    assert auth.value.status == 401 and "INVALID_AUTHENTICATION" in auth.value.body
    with pytest.raises(CrmRequestError) as bad:
        make_connector(emulator).fetch("tickets", ["1"], ["subject"])
    assert bad.value.status == 400 and "VALIDATION_ERROR" in str(bad.value)


def test_a_daily_429_raises_and_stops_every_worker_until_midnight(
    emulator: HubSpotEmulator, make_connector: ConnectorFactory
) -> None:
    one, other = make_connector(emulator), make_connector(emulator)
    emulator.inject("429-daily")
    with pytest.raises(CrmRateLimited) as exc:
        one.fetch("contacts", ["1"], ["email"])
    assert exc.value.retry_after > 0
    with pytest.raises(CrmRateLimited):
        other.fetch("contacts", ["1"], ["email"])
    assert emulator.calls["batch/read"] == 1  # the other worker did not even ask


def test_the_daily_budget_is_tracked_from_the_headers(
    make_emulator: EmulatorFactory, make_connector: ConnectorFactory
) -> None:
    emu = make_emulator(daily=3)
    connector = make_connector(emu)
    connector.fetch("contacts", ["1"], ["email"])
    assert connector.api.budget.remaining() == (2, 3)
    assert connector.api_usage() == (1, 3)  # what the metrics show
    connector.fetch("contacts", ["1"], ["email"])
    connector.fetch("contacts", ["1"], ["email"])
    with pytest.raises(CrmRateLimited):
        connector.fetch("contacts", ["1"], ["email"])
    assert emu.calls["batch/read"] == 3


def test_oauth_trades_the_refresh_token_and_again_on_401(
    emulator: HubSpotEmulator, redis_conn: redis.Redis
) -> None:
    emulator.add_oauth_app("client-1", "shh", "refresh-1")
    rid = emulator.create("contacts", {"email": "a@example.com"})
    options = HubSpotOptions(host=emulator.url, limits=quick_limits(), namespace="oauth-test")
    connector = HubSpotConnector.with_refresh_token(
        "client-1", "shh", "refresh-1", redis_conn, options
    )
    try:
        assert [r.id for r in connector.fetch("contacts", [rid], ["email"])] == [rid]
        assert connector.calls["auth"] == 1
        emulator.tokens.clear()  # every access token revoked
        assert [r.id for r in connector.fetch("contacts", [rid], ["email"])] == [rid]
        assert connector.calls["auth"] == 2
    finally:
        connector.close()


def test_connector_from_settings_reads_the_documented_names(
    settings: Settings, emulator: HubSpotEmulator
) -> None:
    env = {"TASUKI_HUBSPOT_HOST": emulator.url, "TASUKI_HUBSPOT_APP_ID": APP_ID}
    with_token = {**env, "TASUKI_HUBSPOT_ACCESS_TOKEN": TOKEN, "TASUKI_HUBSPOT_TIER": "starter"}
    connector = connector_from_settings(_with_env(settings, with_token))
    try:
        assert connector.options.host == emulator.url and connector.options.app_id == APP_ID
        assert connector.api.limits.burst.calls == 100
        assert connector.check_login() == f"signed in to {emulator.url} with the access token"
    finally:
        connector.close()
    with pytest.raises(ConfigError) as err:
        connector_from_settings(_with_env(settings, env))
    [problem] = err.value.problems
    assert str(problem).startswith("environment:1:1: TASUKI_HUBSPOT_ACCESS_TOKEN is not set")
    with pytest.raises(ConfigError, match="TASUKI_HUBSPOT_TIER: unknown tier 'gold'"):
        connector_from_settings(_with_env(settings, {**with_token, "TASUKI_HUBSPOT_TIER": "gold"}))


def _with_env(settings: Settings, env: dict[str, str]) -> Settings:
    """``settings`` with the HubSpot variables of ``env``, read as load_settings reads them."""
    return replace(settings, hubspot=HubSpotSettings.from_env(env))


def test_check_config_with_services_signs_in_to_the_account(
    emulator: HubSpotEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("TASUKI_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "tasuki.yaml"
    shipped = builtin_path("tasuki.yaml").read_text(encoding="utf-8")
    config.write_text(shipped.replace("crm: local ", "crm: hubspot ", 1), encoding="utf-8")
    env = {
        "TASUKI_CONFIG": str(config),
        "TASUKI_DATA_DIR": str(tmp_path / "data"),
        "TASUKI_WEBHOOK_SECRET": "s",
        "TASUKI_PUBLIC_URL": "https://tasuki.example.com",
        "TASUKI_HUBSPOT_CLIENT_SECRET": "client-secret",
        "TASUKI_HUBSPOT_HOST": emulator.url,
        "TASUKI_HUBSPOT_ACCESS_TOKEN": TOKEN,
    }
    ok = CliRunner().invoke(main, ["check-config", "--with-services"], env=env)
    assert ok.exit_code == 0, ok.output
    assert f"crm: hubspot signed in to {emulator.url} with the access token" in ok.output
    wrong = {**env, "TASUKI_HUBSPOT_ACCESS_TOKEN": "pat-revoked"}
    refused = CliRunner().invoke(main, ["check-config", "--with-services"], env=wrong)
    assert refused.exit_code == 2
    assert "environment:1:1: TASUKI_HUBSPOT_*: hubspot sign-in failed" in refused.output
    assert "pat-revoked" not in refused.output


def test_5xx_waits_follow_the_declared_policy_and_the_error_keeps_its_cause(
    emulator: HubSpotEmulator, make_connector: ConnectorFactory
) -> None:
    waits: list[float] = []
    connector = make_connector(emulator, sleep=waits.append)
    emulator.inject("502", 100)
    with pytest.raises(CrmUnavailable) as exc:
        connector.fetch("contacts", ["1"], ["email"])
    assert waits == list(RETRY_WAITS)
    assert "HubSpot unavailable after 6 attempts" in str(exc.value)
    assert exc.value.__cause__ is not None and "HubSpot answered 502" in str(exc.value.__cause__)


def test_a_burst_429_that_never_ends_gives_up_after_the_policys_retries(
    make_emulator: EmulatorFactory, make_connector: ConnectorFactory
) -> None:
    emu = make_emulator(burst=(10_000, 0.02))
    connector = make_connector(emu, sleep=lambda s: None)
    emu.inject("429", 1_000)
    with pytest.raises(CrmRateLimited) as exc:
        connector.fetch("contacts", ["1"], ["email"])
    assert connector.calls["read"] == MAX_RATE_LIMIT_RETRIES + 1
    assert connector.api.retries["rate_limited"] == MAX_RATE_LIMIT_RETRIES
    assert "kept answering 429 (21 attempts)" in str(exc.value)
    assert "ten_secondly_rolling limit" in str(exc.value)
    assert "policyName" in str(exc.value.__cause__)


def test_a_daily_429_is_not_retried(
    emulator: HubSpotEmulator, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(emulator, sleep=lambda s: None)
    emulator.inject("429-daily", 5)
    with pytest.raises(CrmRateLimited) as exc:
        connector.fetch("contacts", ["1"], ["email"])
    assert connector.calls["read"] == 1 and "daily limit reached" in str(exc.value)
    assert exc.value.retry_after is not None and exc.value.retry_after > 0
