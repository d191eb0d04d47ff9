"""Fixtures for the Salesforce tests: an emulated org over HTTPS and connectors signed in to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from connectors.salesforce import SalesforceConnector, SalesforceOptions
from connectors.salesforce_auth import Domain
from connectors.salesforce_bulk import Polling
from tasuki.settings import Config, Settings
from tests.salesforce.sf_emulator import Org, RunningEmulator, serve
from tests.salesforce.sf_testorg import CONSUMER_KEY, USERNAME, seeded_org


@pytest.fixture(scope="session")
def private_key_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A connected app's RSA key: (private key PEM file, public key PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("jwt") / "server.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public


@pytest.fixture
def org(private_key_file: tuple[Path, bytes]) -> Org:
    """An emulated org with Lead and Opportunity, the integration user and its connected app."""
    return seeded_org(private_key_file[1])


@pytest.fixture
def emulator(org: Org, tmp_path: Path) -> Iterator[RunningEmulator]:
    """``org`` served over HTTPS on 127.0.0.1."""
    running = serve(org, tmp_path)
    yield running
    running.stop()


@pytest.fixture
def options(emulator: RunningEmulator) -> SalesforceOptions:
    """Connector options pointing at the emulator, with short waits."""
    return SalesforceOptions(
        domain=Domain(emulator.url), timeout=5.0, bulk_polling=Polling(interval=0.01)
    )


@pytest.fixture
def http(emulator: RunningEmulator) -> Iterator[requests.Session]:
    """A requests session trusting the emulator's test CA."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override `verify`
    session.verify = str(emulator.ca_path)
    yield session
    session.close()


@pytest.fixture
def make_connector(
    options: SalesforceOptions, http: requests.Session, private_key_file: tuple[Path, bytes]
) -> Iterator[Callable[..., SalesforceConnector]]:
    """Build JWT-bearer connectors to the emulator (``**changes`` replace options fields)."""
    made: list[SalesforceConnector] = []

    def make(**changes: object) -> SalesforceConnector:
        from dataclasses import replace

        connector = SalesforceConnector.with_jwt(
            SecretStr(CONSUMER_KEY),
            USERNAME,
            str(private_key_file[0]),
            replace(options, **changes),  # type: ignore[arg-type]
            session=http,
        )
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


@pytest.fixture
def connector(make_connector: Callable[..., SalesforceConnector]) -> SalesforceConnector:
    """A JWT-bearer connector signed in to the emulator."""
    return make_connector()


@pytest.fixture
def sf_config(settings: Settings) -> Config:
    """The default configuration with Salesforce as the CRM."""
    return settings.config.model_copy(update={"crm": "salesforce"})
