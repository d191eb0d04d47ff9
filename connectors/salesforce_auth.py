"""How tasuki signs in to Salesforce: one typed config per auth flow, and the HTTP transport.

::

    JwtBearer(consumer_key, username, private_key_file)   OAuth 2.0 JWT bearer (recommended)
    PasswordLogin(username, password, security_token)     SOAP login with password + token
    ExistingSession(session_id, instance_url)             a session someone else obtained

Each flow's :meth:`login` returns a :class:`Login` (access token and instance URL) through
simple-salesforce's own ``SalesforceLogin``; an existing session cannot be renewed, so when it
expires the connector reports :class:`~tasuki.errors.CrmAuthError`.

simple-salesforce sets no timeout on its requests; :func:`http_session` mounts a transport that
gives every request one. When the domain is a URL (``https://127.0.0.1:8443``: an emulator or a
proxy) the same transport sends requests meant for ``login.salesforce.com`` there instead, so
simple-salesforce's login code runs unmodified against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import requests
from pydantic import SecretStr
from requests.adapters import HTTPAdapter
from simple_salesforce.login import SalesforceLogin

LOGIN_HOST = "https://login.salesforce.com"
"""Where simple-salesforce sends logins for the ``login`` domain."""

_Timeout = float | tuple[float, float] | tuple[float, None] | None


@dataclass(frozen=True)
class Login:
    """An access token and the instance it is valid on (``https://…my.salesforce.com``)."""

    session_id: SecretStr
    instance_url: str


@dataclass(frozen=True)
class Domain:
    """Where logins go: ``login``, ``test``, ``<mydomain>.my``, or a base URL to reroute to."""

    value: str = "login"

    @property
    def reroute(self) -> str | None:
        """The base URL logins are sent to instead of login.salesforce.com, if any."""
        if self.value.startswith(("https://", "http://")):
            return self.value.rstrip("/")
        return None

    @property
    def for_login(self) -> str:
        """The domain simple-salesforce builds ``https://{domain}.salesforce.com`` from."""
        if self.reroute:
            return "login"
        return self.value.removesuffix(".salesforce.com")


class SalesforceAuth(Protocol):
    """One way of obtaining a session."""

    @property
    def renewable(self) -> bool:
        """Whether :meth:`login` can be called again when the session expires."""
        ...

    def login(self, session: requests.Session, domain: Domain, version: str) -> Login:
        """Sign in; raises simple-salesforce's ``SalesforceAuthenticationFailed`` on refusal."""
        ...


def _login(raw: tuple[str, str]) -> Login:
    session_id, instance = raw
    return Login(SecretStr(session_id), f"https://{instance}")


@dataclass(frozen=True)
class JwtBearer:
    """OAuth 2.0 JWT bearer flow: a connected app's consumer key, the integration user's
    username, and the private key (PEM file) whose certificate is uploaded to the app."""

    consumer_key: SecretStr
    username: str
    private_key_file: str
    renewable: bool = field(default=True, init=False)

    def login(self, session: requests.Session, domain: Domain, version: str) -> Login:
        """Sign in with a freshly signed assertion."""
        return _login(
            SalesforceLogin(
                username=self.username,
                consumer_key=self.consumer_key.get_secret_value(),
                privatekey_file=self.private_key_file,
                domain=domain.for_login,
                sf_version=version,
                session=session,
            )
        )


@dataclass(frozen=True)
class PasswordLogin:
    """Username, password and security token (SOAP ``login``)."""

    username: str
    password: SecretStr
    security_token: SecretStr = field(default_factory=lambda: SecretStr(""))
    renewable: bool = field(default=True, init=False)

    def login(self, session: requests.Session, domain: Domain, version: str) -> Login:
        """Sign in with the password and token."""
        return _login(
            SalesforceLogin(
                username=self.username,
                password=self.password.get_secret_value(),
                security_token=self.security_token.get_secret_value(),
                domain=domain.for_login,
                sf_version=version,
                session=session,
            )
        )


@dataclass(frozen=True)
class ExistingSession:
    """A session id and instance URL obtained elsewhere (cannot be renewed here)."""

    session_id: SecretStr
    instance_url: str
    renewable: bool = field(default=False, init=False)

    def login(self, session: requests.Session, domain: Domain, version: str) -> Login:
        """The given session, as is."""
        return Login(self.session_id, self.instance_url.rstrip("/"))


class _Transport(HTTPAdapter):
    """Gives every request a timeout, and reroutes login.salesforce.com when told to."""

    def __init__(self, timeout: float, reroute: Mapping[str, str]) -> None:
        super().__init__()
        self.timeout = timeout
        self.reroute = dict(reroute)

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: _Timeout = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        url = request.url or ""
        for prefix, target in self.reroute.items():
            if url.startswith(prefix):
                request.url = target + url[len(prefix) :]
        return super().send(
            request,
            stream=stream,
            timeout=self.timeout if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


def http_session(
    timeout: float, domain: Domain, session: requests.Session | None = None
) -> requests.Session:
    """``session`` (default: a new one) with every request bounded by ``timeout`` seconds."""
    session = session or requests.Session()
    reroute = {LOGIN_HOST: domain.reroute} if domain.reroute else {}
    transport = _Transport(timeout, reroute)
    session.mount("https://", transport)
    session.mount("http://", transport)
    return session
