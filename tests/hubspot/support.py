"""What the HubSpot tests share besides fixtures: constants, factories and helpers (the
fixtures in conftest.py use them too; tests import them from here, never from conftest)."""

from __future__ import annotations

from collections.abc import Callable

from hubspot import HubSpot
from urllib3.util.retry import Retry

from connectors.hubspot import HubSpotConnector
from connectors.hubspot_api import RateLimits
from tasuki.ratelimit import Window
from tests.hubspot.hs_emulator import HubSpotEmulator

TOKEN = "pat-test-0001"
APP_ID = "424242"
PROPERTY_TYPES = {"tasuki_score": "number", "amount": "number", "forcas_target": "bool"}
EmulatorFactory = Callable[..., HubSpotEmulator]
ConnectorFactory = Callable[..., HubSpotConnector]


def quick_limits(burst: int = 1000, search: int = 1000, seconds: float = 1.0) -> RateLimits:
    """Windows loose enough that tests which are not about limits never wait."""
    return RateLimits(Window("burst", burst, seconds), Window("search", search, seconds))


class RawApis:
    """hubspot-api-client's own API objects, pointed at an emulator, closed after the test."""

    def __init__(self, emu: HubSpotEmulator, token: str = TOKEN) -> None:
        client = HubSpot(access_token=token, host=emu.url, retry=Retry(total=0, read=False))
        self.batch = client.crm.objects.batch_api
        self.search = client.crm.objects.search_api

    def close(self) -> None:
        for api in (self.batch, self.search):
            api.api_client.rest_client.pool_manager.clear()
