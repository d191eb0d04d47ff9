"""``TASUKI_OPS_TOKEN`` and ``TASUKI_OIDC_*``: how the console signs its sessions and whom it
lets in through the company's identity provider.

- ``TASUKI_OPS_TOKEN``: the console's secret: it signs session cookies and CSRF tokens (at
  least :data:`MIN_SECRET_LENGTH` characters; every ``tasuki serve`` process behind one load
  balancer needs the same). Unset: the console answers 404 and says why; webhooks still work.
- ``TASUKI_OIDC_ISSUER``: the identity provider's issuer URL (its discovery document is
  ``ISSUER/.well-known/openid-configuration``); with ``TASUKI_OIDC_CLIENT_ID`` and
  ``TASUKI_OIDC_CLIENT_SECRET`` it adds "Sign in with …" to the login page.
- ``TASUKI_OIDC_NAME``: the provider's name on that button (default ``SSO``).
- ``TASUKI_OIDC_DOMAINS``: comma-separated e-mail domains whose verified addresses may sign in
  as viewers without being added first (others need ``tasuki users add EMAIL --oidc``).
- ``TASUKI_SECURE_COOKIES``: ``true`` marks the session cookie ``Secure`` (default: when
  ``TASUKI_PUBLIC_URL`` starts with ``https://``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr

MIN_SECRET_LENGTH = 16
"""Shorter ``TASUKI_OPS_TOKEN`` values are refused: they sign every session."""


@dataclass(frozen=True)
class OidcSettings:
    """The identity provider the console trusts."""

    issuer: str
    client_id: str
    client_secret: SecretStr
    name: str = "SSO"
    domains: frozenset[str] = frozenset()

    @property
    def metadata_url(self) -> str:
        """The provider's discovery document."""
        return f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"


@dataclass(frozen=True)
class ConsoleSettings:
    """What the console needs from the environment besides ``TASUKI_OPS_TOKEN`` (which
    :class:`~tasuki.settings.Settings` keeps as ``ops_token``)."""

    oidc: OidcSettings | None = None
    secure_cookies: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ConsoleSettings:
        """Read the variables of this module's docstring from ``env``."""
        issuer = (env.get("TASUKI_OIDC_ISSUER") or "").strip()
        client_id = (env.get("TASUKI_OIDC_CLIENT_ID") or "").strip()
        client_secret = (env.get("TASUKI_OIDC_CLIENT_SECRET") or "").strip()
        oidc = None
        if issuer and client_id and client_secret:
            domains = frozenset(
                d.strip().lower().lstrip("@")
                for d in (env.get("TASUKI_OIDC_DOMAINS") or "").split(",")
                if d.strip()
            )
            oidc = OidcSettings(
                issuer,
                client_id,
                SecretStr(client_secret),
                (env.get("TASUKI_OIDC_NAME") or "").strip() or "SSO",
                domains,
            )
        secure = (env.get("TASUKI_SECURE_COOKIES") or "").strip().lower()
        https = (env.get("TASUKI_PUBLIC_URL") or "").startswith("https://")
        return cls(oidc, secure in ("1", "true", "yes") if secure else https)
