"""Each CRM's credentials and URLs, read from the environment once, with :class:`Settings`.

One typed class per CRM (:class:`SalesforceSettings`, :class:`HubSpotSettings`), each field
tied to the variable it comes from, and one hook per class that says what is missing for the
sign-in the variables point at (:meth:`SalesforceSettings.login_problems`). Connectors and
webhook receivers read these objects, never ``os.environ``, so ``tasuki check-config`` sees
every credential a process will use.

A missing or unusable variable is always the same kind of problem, whichever the provider: a
:class:`~tasuki.errors.Problem` at line 1, column 1 of ``environment`` naming the variable
(:func:`missing`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import SecretStr

from tasuki.errors import Problem

ENVIRONMENT = "environment"
"""The "file" of problems found in environment variables."""


@dataclass(frozen=True)
class Tier:
    """An account's API allowance."""

    burst: int
    """Calls per rolling 10 seconds."""
    daily: int | None
    """Calls per day (``None``: no daily limit, as for OAuth apps)."""
    search_per_second: int = 5


TIERS: dict[str, Tier] = {
    "free": Tier(100, 250_000),
    "starter": Tier(100, 250_000),
    "professional": Tier(190, 650_000),
    "enterprise": Tier(190, 1_000_000),
    "api_limit_increase": Tier(250, 1_650_000),
    "oauth": Tier(110, None),
}
"""Private-app limits by subscription (HubSpot's API usage guidelines); ``oauth`` is a public
app's limit per installed account. ``api_limit_increase`` assumes one pack on Professional."""


RECEIVER_SECRETS: dict[str, str] = {
    "miitel": "TASUKI_MIITEL_TOKEN",
    "zoom": "TASUKI_ZOOM_SECRET_TOKEN",
}
"""The secret each optional receiver (``receivers:`` in tasuki.yaml) checks deliveries with."""


def missing(variable: str, why: str) -> Problem:
    """The problem of an unset variable: ``environment:1:1: VARIABLE is not set: why``."""
    return Problem(ENVIRONMENT, 1, 1, f"{variable} is not set: {why}")


def unusable(variable: str, why: str) -> Problem:
    """The problem of a variable whose value cannot be used."""
    return Problem(ENVIRONMENT, 1, 1, f"{variable}: {why}")


def _plain(variable: str, default: str | None = None) -> Any:
    return dataclasses.field(default=default, metadata={"env": variable})


def _secret(variable: str) -> Any:
    return dataclasses.field(default=None, metadata={"env": variable, "secret": True})


class _FromEnv:
    """``from_env``: each field from the variable named in its metadata; unset or empty keeps
    the default, secrets become :class:`SecretStr`."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        """The values ``env`` holds for this provider."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            raw = env.get(f.metadata["env"], "").strip()
            if raw:
                values[f.name] = SecretStr(raw) if f.metadata.get("secret") else raw
        return cls(**values)

    @classmethod
    def variable(cls, name: str) -> str:
        """The environment variable of field ``name``."""
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        variable: str = fields[name].metadata["env"]
        return variable

    @classmethod
    def variables(cls) -> list[str]:
        """Every variable this provider reads."""
        return [f.metadata["env"] for f in dataclasses.fields(cls)]  # type: ignore[arg-type]


@dataclass(frozen=True)
class SalesforceSettings(_FromEnv):
    """``TASUKI_SALESFORCE_*``: the sign-in (JWT bearer, password or an existing session) and
    what the Outbound Message receiver checks."""

    domain: str = _plain("TASUKI_SALESFORCE_DOMAIN", "login")
    """``login``, ``test``, ``<mydomain>.my`` or a base URL (an emulator, a proxy)."""
    consumer_key: SecretStr | None = _secret("TASUKI_SALESFORCE_CONSUMER_KEY")
    username: str | None = _plain("TASUKI_SALESFORCE_USERNAME")
    private_key_file: str | None = _plain("TASUKI_SALESFORCE_PRIVATE_KEY_FILE")
    password: SecretStr | None = _secret("TASUKI_SALESFORCE_PASSWORD")
    security_token: SecretStr | None = _secret("TASUKI_SALESFORCE_SECURITY_TOKEN")
    session_id: SecretStr | None = _secret("TASUKI_SALESFORCE_SESSION_ID")
    instance_url: str | None = _plain("TASUKI_SALESFORCE_INSTANCE_URL")
    org_id: str | None = _plain("TASUKI_SALESFORCE_ORG_ID")
    """The org's id: an Outbound Message from any other org is refused."""
    integration_user_id: str | None = _plain("TASUKI_SALESFORCE_INTEGRATION_USER_ID")
    """tasuki's own user: its changes are echoes of the write-back."""

    _FLOWS: ClassVar[dict[str, tuple[str, ...]]] = {
        "JWT bearer": ("consumer_key", "username", "private_key_file"),
        "password": ("username", "password"),
        "existing session": ("session_id", "instance_url"),
    }

    @property
    def flow(self) -> str | None:
        """The sign-in the variables complete (JWT bearer first), or ``None``."""
        for name, needed in self._FLOWS.items():
            if all(getattr(self, f) for f in needed):
                return name
        return None

    def login_problems(self) -> list[Problem]:
        """What stops the sign-in: each variable the intended flow lacks (the flow is the one
        whose own variables are set: a consumer key or key file means JWT bearer, a session id
        or instance URL an existing session, anything else the password), or an unreadable key."""
        flow = self.flow
        if flow == "JWT bearer":
            assert self.private_key_file is not None
            try:
                Path(self.private_key_file).read_bytes()
            except OSError as exc:
                return [
                    unusable(
                        self.variable("private_key_file"),
                        f"cannot read {self.private_key_file}: {exc.strerror}",
                    )
                ]
            return []
        if flow is not None:
            return []
        if self.consumer_key or self.private_key_file:
            intended = "JWT bearer"
        elif self.session_id or self.instance_url:
            intended = "existing session"
        else:
            intended = "password"
        needed = self._FLOWS[intended]
        others = "; ".join(
            f"{name}: {' + '.join(self.variable(f) for f in fields)}"
            for name, fields in self._FLOWS.items()
            if name != intended
        )
        why = (
            f"crm is salesforce and the {intended} sign-in needs "
            f"{' + '.join(self.variable(f) for f in needed)} (or {others})"
        )
        return [missing(self.variable(f), why) for f in needed if not getattr(self, f)]


@dataclass(frozen=True)
class HubSpotSettings(_FromEnv):
    """``TASUKI_HUBSPOT_*``: a private app's access token or an OAuth app's refresh token, the
    secret webhook signatures are made with, and the account's host and tier."""

    access_token: SecretStr | None = _secret("TASUKI_HUBSPOT_ACCESS_TOKEN")
    client_id: str | None = _plain("TASUKI_HUBSPOT_CLIENT_ID")
    client_secret: SecretStr | None = _secret("TASUKI_HUBSPOT_CLIENT_SECRET")
    """The OAuth app's secret; also the key of webhook signatures."""
    refresh_token: SecretStr | None = _secret("TASUKI_HUBSPOT_REFRESH_TOKEN")
    app_id: str | None = _plain("TASUKI_HUBSPOT_APP_ID")
    """tasuki's own app: its changes are echoes of the write-back."""
    host: str | None = _plain("TASUKI_HUBSPOT_HOST")
    """API host (unset: HubSpot's own)."""
    tier: str = _plain("TASUKI_HUBSPOT_TIER", "professional")
    """The subscription whose API limits apply."""

    @property
    def flow(self) -> str | None:
        """``access token``, ``OAuth`` or ``None`` when neither is complete."""
        if self.access_token:
            return "access token"
        if self.client_id and self.client_secret and self.refresh_token:
            return "OAuth"
        return None

    def login_problems(self) -> list[Problem]:
        """What stops the sign-in: the access token, or each OAuth variable missing once the
        client id or refresh token says an OAuth app is meant; an unknown tier."""
        problems = []
        if self.tier not in TIERS:
            problems.append(
                unusable(
                    self.variable("tier"),
                    f"unknown tier {self.tier!r}; one of {', '.join(TIERS)}",
                )
            )
        if self.flow is not None:
            return problems
        oauth = ("client_id", "client_secret", "refresh_token")
        if self.client_id or self.refresh_token:
            why = f"crm is hubspot and the OAuth app needs {' + '.join(map(self.variable, oauth))}"
            problems += [missing(self.variable(f), why) for f in oauth if not getattr(self, f)]
        else:
            why = (
                "crm is hubspot: a private app's access token, or an OAuth app's "
                f"{' + '.join(map(self.variable, oauth))}"
            )
            problems.append(missing(self.variable("access_token"), why))
        return problems
