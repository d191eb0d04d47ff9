"""Signing in and out: the login form (local accounts), OpenID Connect, one-time links.

OpenID Connect is Authlib's Flask client: discovery document, authorization code flow with
state and nonce kept in the session, the ID token's signature checked against the provider's
JWKS. The provider's verified e-mail address picks the console user
(:func:`tasuki.console.accounts.oidc_user`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, abort, current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from tasuki.console.accounts import check_password, oidc_user, spend_login_link
from tasuki.console.app import (
    bp,
    console_settings,
    console_store,
    current_user,
    login_throttle,
    sign_in,
)
from tasuki.settings import Settings

OIDC_CLIENT = "oidc"
"""The name of the identity provider's client in Authlib's registry."""


def init_oidc(app: Flask, settings: Settings) -> None:
    """Register the identity provider's client when ``TASUKI_OIDC_*`` name one."""
    oidc = settings.console.oidc
    if oidc is None:
        return
    oauth = OAuth(app)
    oauth.register(
        OIDC_CLIENT,
        client_id=oidc.client_id,
        client_secret=oidc.client_secret.get_secret_value(),
        server_metadata_url=oidc.metadata_url,
        client_kwargs={"scope": "openid email profile"},
    )
    app.extensions["tasuki_oauth"] = oauth


def _oauth() -> Any:
    return current_app.extensions.get("tasuki_oauth")


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/console"):
            return target
    return url_for("console.overview")


def _login_page(status: int = 200, error: str | None = None) -> ResponseReturnValue:
    oidc = console_settings().console.oidc
    return render_template(
        "console/login.html",
        error=error,
        oidc_name=oidc.name if oidc else None,
        next=_safe_next(request.values.get("next")),
    ), status


@bp.get("/login")
def login() -> ResponseReturnValue:
    """The login form (and the identity provider's button when one is configured)."""
    if current_user() is not None:
        return redirect(_safe_next(request.args.get("next")))
    return _login_page()


@bp.post("/login")
def login_post() -> ResponseReturnValue:
    """Check a local account's password; a wrong one answers 401 with the form again, and an
    address past :data:`~tasuki.console.throttle.LOGIN_LIMIT` 429 without a check."""
    if not login_throttle().allows(request.remote_addr or "-"):
        abort(429, description="too many sign-in attempts from this address; try again later")
    user = check_password(
        console_store(), request.form.get("username", ""), request.form.get("password", "")
    )
    if user is None:
        return _login_page(401, "bad_login")
    sign_in(user)
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the session."""
    session.clear()
    return redirect(url_for("console.login"))


@bp.get("/login/oidc")
def login_oidc() -> ResponseReturnValue:
    """Send the browser to the identity provider."""
    client = _oauth()
    if client is None:
        return _login_page(404, "no_oidc")
    session["next"] = _safe_next(request.args.get("next"))
    redirect_uri = url_for("console.oidc_callback", _external=True)
    response: ResponseReturnValue = client.oidc.authorize_redirect(redirect_uri)
    return response


@bp.get("/auth/callback")
def oidc_callback() -> ResponseReturnValue:
    """The identity provider's answer: check it, find the console user, start a session."""
    client = _oauth()
    if client is None:
        return _login_page(404, "no_oidc")
    try:
        token = client.oidc.authorize_access_token()
    except (OAuthError, ValueError) as exc:
        current_app.logger.warning("OpenID Connect sign-in refused: %s", exc)
        return _login_page(401, "oidc_failed")
    claims = token.get("userinfo") or {}
    email = str(claims.get("email") or "")
    oidc = console_settings().console.oidc
    verified = claims.get("email_verified", True) in (True, "true")
    user = None
    if email and verified and oidc is not None:
        user = oidc_user(console_store(), email, oidc.domains)
    if user is None:
        return _login_page(403, "oidc_unknown")
    target = session.get("next")
    sign_in(user)
    return redirect(_safe_next(target if isinstance(target, str) else None))


@bp.get("/login/link/<token>")
def login_link(token: str) -> ResponseReturnValue:
    """Sign in with a one-time link (``tasuki serve --demo``); a spent one shows the form."""
    user = spend_login_link(console_store(), token)
    if user is None:
        return _login_page(403, "link_spent")
    sign_in(user)
    return redirect(url_for("console.overview"))
