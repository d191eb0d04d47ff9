"""The emulator keeps HubSpot's limits and answers, as seen through the unmodified client."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hubspot.crm.objects.exceptions import ApiException

from tests.hubspot.hs_emulator import HubSpotEmulator
from tests.hubspot.support import EmulatorFactory, RawApis

Apis = Callable[..., RawApis]


def _error(exc: ApiException) -> dict[str, object]:
    body: dict[str, object] = json.loads(exc.body)
    return body


def _fill(emu: HubSpotEmulator, n: int, at: int = 1_700_000_000_000) -> list[str]:
    return [emu.create("contacts", {"email": f"c{i}@example.com"}, at=at + i) for i in range(n)]


def test_batch_read_takes_100_ids_and_names_the_missing_ones_in_a_207(
    emulator: HubSpotEmulator, raw_apis: Apis
) -> None:
    ids = _fill(emulator, 3)
    batch = raw_apis(emulator).batch
    answer = batch.read("contacts", {"inputs": [{"id": i} for i in [*ids, "9999"]]})
    assert sorted(r.id for r in answer.results) == ids
    assert answer.errors[0].category == "OBJECT_NOT_FOUND"
    assert answer.errors[0].context == {"ids": ["9999"]}
    with pytest.raises(ApiException) as too_many:
        batch.read("contacts", {"inputs": [{"id": str(i)} for i in range(101)]})
    assert too_many.value.status == 400
    assert _error(too_many.value)["category"] == "VALIDATION_ERROR"


def test_history_reads_are_capped_at_50(emulator: HubSpotEmulator, raw_apis: Apis) -> None:
    batch = raw_apis(emulator).batch
    with pytest.raises(ApiException) as exc:
        batch.read(
            "contacts",
            {"inputs": [{"id": str(i)} for i in range(51)], "propertiesWithHistory": ["email"]},
        )
    assert "property histories is 50" in str(_error(exc.value)["message"])


def test_search_pages_filters_and_stops_at_the_10000_cap(
    emulator: HubSpotEmulator, raw_apis: Apis
) -> None:
    _fill(emulator, 450)
    search = raw_apis(emulator).search
    request = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "lastmodifieddate",
                        "operator": "GTE",
                        "value": "1700000000100",
                    }
                ]
            }
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email"],
        "limit": 200,
    }
    first = search.do_search("contacts", request)
    assert first.total == 350 and len(first.results) == 200
    assert first.results[0].properties["email"] == "c100@example.com"
    second = search.do_search("contacts", {**request, "after": first.paging.next.after})
    assert len(second.results) == 150 and second.paging is None
    with pytest.raises(ApiException) as capped:
        search.do_search("contacts", {**request, "after": "9900"})
    assert capped.value.status == 400
    with pytest.raises(ApiException):
        search.do_search("contacts", {**request, "limit": 201})


def test_rate_limit_headers_and_both_429_policies(
    make_emulator: EmulatorFactory, raw_apis: Apis
) -> None:
    emu = make_emulator(burst=(3, 60.0), search_per_second=(1, 60.0), daily=1000)
    apis = raw_apis(emu)
    _, _, headers = apis.batch.read_with_http_info("contacts", {"inputs": []})
    assert headers["X-HubSpot-RateLimit-Max"] == "3"
    assert headers["X-HubSpot-RateLimit-Daily"] == "1000"
    assert headers["X-HubSpot-RateLimit-Daily-Remaining"] == "999"
    apis.batch.read("contacts", {"inputs": []})
    apis.batch.read("contacts", {"inputs": []})
    with pytest.raises(ApiException) as burst:
        apis.batch.read("contacts", {"inputs": []})
    assert burst.value.status == 429
    assert _error(burst.value)["policyName"] == "TEN_SECONDLY_ROLLING"
    apis.search.do_search("contacts", {"limit": 1})
    with pytest.raises(ApiException) as search:
        apis.search.do_search("contacts", {"limit": 1})
    assert _error(search.value)["policyName"] == "SECONDLY"
    emu.inject("429-daily")
    with pytest.raises(ApiException) as daily:
        apis.search.do_search("contacts", {"limit": 1})
    assert _error(daily.value)["policyName"] == "DAILY"
    assert emu.calls["batch/read"] == 4 and emu.calls["search"] == 3


def test_bad_token_gets_hubspots_401_body(emulator: HubSpotEmulator, raw_apis: Apis) -> None:
    with pytest.raises(ApiException) as exc:
        raw_apis(emulator, "wrong").batch.read("contacts", {"inputs": []})
    assert exc.value.status == 401
    assert _error(exc.value)["category"] == "INVALID_AUTHENTICATION"
