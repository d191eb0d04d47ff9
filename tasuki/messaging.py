"""Where notifications go out: the Slack bot and the SMTP server, read from the environment.

Like the CRMs' credentials (:mod:`tasuki.providers`), these are read once with
:func:`~tasuki.settings.load_settings` and never from files:

``TASUKI_SLACK_BOT_TOKEN``
    the Slack app's bot token (``xoxb-…``); unset: nothing goes to Slack.
``TASUKI_SLACK_API_URL``
    the Web API's base URL (default ``https://slack.com/api/``; GovSlack, a proxy, a test
    emulator).
``TASUKI_SMTP_URL``
    ``smtp://host[:25]`` (plain), ``smtp+starttls://user:password@host[:587]`` (STARTTLS) or
    ``smtps://user:password@host[:465]`` (TLS from the first byte); user and password
    percent-encoded. Or the parts one by one: ``TASUKI_SMTP_HOST``, ``TASUKI_SMTP_PORT``,
    ``TASUKI_SMTP_SECURITY`` (``none`` | ``starttls`` | ``ssl``), ``TASUKI_SMTP_USERNAME``,
    ``TASUKI_SMTP_PASSWORD``; a part set on its own wins over the URL's (keep the password in
    its own secret and out of the URL if you like).
``TASUKI_SMTP_FROM``
    the sender, ``tasuki <tasuki@example.com>``; required once SMTP is configured.
``TASUKI_SMTP_CA_FILE``
    a CA bundle to trust besides the system's (a server with a company CA).

The SMTP password is a :class:`~pydantic.SecretStr` and the settings print the server as a URL
with the password masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from tasuki.errors import ConfigError, Problem
from tasuki.providers import unusable

SLACK_API_URL = "https://slack.com/api/"
"""Slack's Web API, where ``TASUKI_SLACK_API_URL`` points unless set."""

Security = Literal["none", "starttls", "ssl"]

_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("none", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("ssl", 465),
}
"""``TASUKI_SMTP_URL`` scheme → (security, default port)."""


@dataclass(frozen=True)
class SlackSettings:
    """``TASUKI_SLACK_*``: the bot token and the API's address."""

    bot_token: SecretStr | None = None
    api_url: str = SLACK_API_URL

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SlackSettings:
        """``TASUKI_SLACK_BOT_TOKEN`` and ``TASUKI_SLACK_API_URL`` from ``env``."""
        token = (env.get("TASUKI_SLACK_BOT_TOKEN") or "").strip()
        url = (env.get("TASUKI_SLACK_API_URL") or "").strip()
        return cls(SecretStr(token) if token else None, url or SLACK_API_URL)

    @property
    def configured(self) -> bool:
        """True when messages can go to Slack."""
        return self.bot_token is not None


@dataclass(frozen=True)
class SmtpSettings:
    """The SMTP server mail goes out through, resolved from the variables above."""

    host: str
    port: int
    security: Security
    sender: str
    username: str | None = None
    password: SecretStr | None = None
    ca_file: str | None = None

    @property
    def url(self) -> str:
        """The server as a ``TASUKI_SMTP_URL``, password masked (for logs and ``repr``)."""
        scheme = {v[0]: k for k, v in _SCHEMES.items()}[self.security]
        user = ""
        if self.username:
            user = f"{self.username}:***@" if self.password else f"{self.username}@"
        return f"{scheme}://{user}{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"SmtpSettings({self.url!r}, sender={self.sender!r})"


_PARTS = {
    "host": "TASUKI_SMTP_HOST",
    "port": "TASUKI_SMTP_PORT",
    "security": "TASUKI_SMTP_SECURITY",
    "username": "TASUKI_SMTP_USERNAME",
    "password": "TASUKI_SMTP_PASSWORD",
}


def smtp_from_env(env: Mapping[str, str]) -> SmtpSettings | None:
    """The SMTP server the environment describes, ``None`` when it describes none; a
    :class:`ConfigError` (``environment:1:1``, naming the variable) when it is unusable."""
    get = {name: (env.get(var) or "").strip() for name, var in _PARTS.items()}
    url = (env.get("TASUKI_SMTP_URL") or "").strip()
    if not url and not get["host"]:
        return None
    problems: list[Problem] = []
    parts: dict[str, str] = {}
    if url:
        try:
            split = urlsplit(url)
            port_in_url = split.port
        except ValueError:
            split, port_in_url = None, None
            problems.append(unusable("TASUKI_SMTP_URL", "not a URL"))
        if split is not None:
            if split.scheme not in _SCHEMES:
                problems.append(
                    unusable(
                        "TASUKI_SMTP_URL",
                        f"scheme {split.scheme!r}; use {', '.join(s + '://' for s in _SCHEMES)}",
                    )
                )
            else:
                scheme_security, scheme_port = _SCHEMES[split.scheme]
                parts["security"] = scheme_security
                parts["port"] = str(port_in_url or scheme_port)
            parts["host"] = split.hostname or ""
            if split.username:
                parts["username"] = unquote(split.username)
            if split.password:
                parts["password"] = unquote(split.password)
    parts.update({k: v for k, v in get.items() if v})
    security: str = parts.get("security", "starttls")
    if security not in ("none", "starttls", "ssl"):
        problems.append(unusable(_PARTS["security"], f"{security!r}: none, starttls or ssl"))
    default_port = {"none": 25, "starttls": 587, "ssl": 465}.get(security, 587)
    try:
        port = int(parts.get("port") or default_port)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        problems.append(unusable(_PARTS["port"], f"{parts.get('port')!r} is not a port"))
        port = default_port
    if not parts.get("host"):
        problems.append(unusable("TASUKI_SMTP_URL", "no host"))
    sender = (env.get("TASUKI_SMTP_FROM") or "").strip()
    if not sender:
        problems.append(
            Problem(
                "environment",
                1,
                1,
                "TASUKI_SMTP_FROM is not set: mail needs a sender (tasuki <tasuki@example.com>)",
            )
        )
    if problems:
        raise ConfigError(problems)
    password = parts.get("password")
    return SmtpSettings(
        host=parts["host"],
        port=port,
        security="ssl" if security == "ssl" else "starttls" if security == "starttls" else "none",
        sender=sender,
        username=parts.get("username") or None,
        password=SecretStr(password) if password else None,
        ca_file=(env.get("TASUKI_SMTP_CA_FILE") or "").strip() or None,
    )
