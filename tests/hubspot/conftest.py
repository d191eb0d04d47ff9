"""Fixtures for the HubSpot tests: the emulator on a free port, connectors pointed at it through
hubspot-api-client's host setting, sharing limits through the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from connectors.hubspot import HubSpotConnector, HubSpotOptions
from tasuki.settings import Config, Settings
from tests.hubspot.hs_emulator import HubSpotEmulator
from tests.hubspot.support import (
    APP_ID,
    PROPERTY_TYPES,
    TOKEN,
    ConnectorFactory,
    EmulatorFactory,
    RawApis,
    quick_limits,
)


@pytest.fixture
def hubspot_config(settings: Settings) -> Config:
    """The default config with HubSpot as the active CRM."""
    return settings.config.model_copy(update={"crm": "hubspot"})


@pytest.fixture
def make_emulator(hubspot_config: Config) -> Iterator[EmulatorFactory]:
    """Start emulators (stopped after the test) with every mapped HubSpot property defined."""
    started: list[HubSpotEmulator] = []

    def make(**kwargs: Any) -> HubSpotEmulator:
        kwargs.setdefault("token", TOKEN)
        kwargs.setdefault("app_id", APP_ID)
        kwargs.setdefault("burst", (10_000, 1.0))
        kwargs.setdefault("search_per_second", (10_000, 1.0))
        emu = HubSpotEmulator(**kwargs)
        for per_system in hubspot_config.objects.values():
            mapping = per_system.get("hubspot")
            if mapping is not None and mapping.object in emu.stores:
                emu.define(
                    mapping.object,
                    {f: PROPERTY_TYPES.get(f, "string") for f in mapping.fields.values()},
                )
        emu.add_pipeline(
            "deals",
            "default",
            {
                "appointmentscheduled": "Meeting Booked",
                "qualifiedtobuy": "Qualified",
                "closedwon": "Closed Won",
                "closedlost": "Closed Lost",
            },
        )
        emu.serve()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.close()


@pytest.fixture
def emulator(make_emulator: EmulatorFactory) -> HubSpotEmulator:
    """One emulated account with loose limits."""
    return make_emulator()


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[redis.Redis]:
    """A connection to the real Redis."""
    conn = redis.Redis.from_url(redis_url)
    yield conn
    conn.close()


@pytest.fixture
def make_connector(redis_conn: redis.Redis) -> Iterator[ConnectorFactory]:
    """Connectors to an emulator; those made in one test share one limiter namespace."""
    namespace = f"hubspot-test:{uuid.uuid4().hex[:10]}"
    made: list[HubSpotConnector] = []

    def make(emu: HubSpotEmulator, **kwargs: Any) -> HubSpotConnector:
        options = HubSpotOptions(
            host=emu.url,
            app_id=emu.app_id,
            limits=kwargs.pop("limits", quick_limits()),
            timeout=kwargs.pop("timeout", 5.0),
            settle_seconds=kwargs.pop("settle_seconds", 0.0),
            namespace=namespace,
        )
        connector = HubSpotConnector.with_access_token(
            kwargs.pop("token", TOKEN), redis_conn, options, **kwargs
        )
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


@pytest.fixture
def raw_apis() -> Iterator[Callable[..., RawApis]]:
    """Factory of :class:`RawApis`."""
    made: list[RawApis] = []

    def make(emu: HubSpotEmulator, token: str = TOKEN) -> RawApis:
        apis = RawApis(emu, token)
        made.append(apis)
        return apis

    yield make
    for apis in made:
        apis.close()


@pytest.fixture
def hubspot(emulator: HubSpotEmulator, make_connector: ConnectorFactory) -> HubSpotConnector:
    """A connector to :func:`emulator` that never waits on limits."""
    return make_connector(emulator, sleep=lambda s: None)
