"""The console's place in the webhook app: its blueprint, sessions, language and sign-in.

:func:`init_app` is called by :func:`webhooks.create_app`. Webhook endpoints are untouched:
they keep their signatures and never look at a session; CSRF is checked for the console's
POSTs only, and the login rate limit applies to the login form only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    Request,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_babel import Babel
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from tasuki.console.accounts import Role, user_by_id
from tasuki.console.throttle import LoginThrottle
from tasuki.errors import ConfigError, Problem
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import ConsoleUser
from webhooks.shared import services

LANGUAGES = ("ja", "en")
"""The languages the console speaks, the first the default."""
LANGUAGE_COOKIE = "tasuki_lang"
"""The cookie that keeps a language chosen with the switch (it overrides the browser's)."""
SESSION_LIFETIME = timedelta(hours=12)
"""A session ends this long after sign-in."""
MIN_SECRET_LENGTH = 16
"""Shorter ``TASUKI_OPS_TOKEN`` values are refused: it signs every session."""
PACKAGE = Path(__file__).parent

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")
csrf = CSRFProtect()

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])


def login_throttle() -> LoginThrottle:
    """The current app's login limit."""
    found: LoginThrottle = current_app.extensions["tasuki_login_throttle"]
    return found


def console_store() -> Store:
    """The store of the app handling the request."""
    return services().store


def console_settings() -> Settings:
    """The settings of the app handling the request."""
    return services().settings


def company_zone() -> ZoneInfo:
    """The company's timezone: every time on the console is shown in it."""
    return ZoneInfo(console_settings().config.calendar.timezone)


def select_locale() -> str:
    """The switch's choice (a cookie), else the browser's Accept-Language, else Japanese."""
    chosen = request.cookies.get(LANGUAGE_COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]


def current_user() -> ConsoleUser | None:
    """The signed-in user of this request (read again from the store: a disabled account's
    session ends at its next request)."""
    if "user" not in g:
        user_id = session.get("uid")
        g.user = user_by_id(console_store(), int(user_id)) if isinstance(user_id, int) else None
        if g.user is None and user_id is not None:
            session.clear()
    found: ConsoleUser | None = g.user
    return found


def sign_in(user: ConsoleUser) -> None:
    """Start a fresh session for ``user`` (the old one's contents are dropped)."""
    session.clear()
    session.permanent = True
    session["uid"] = user.id


def login_required(view: F) -> F:
    """Send whoever has no session to the login page, then back."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if current_user() is None:
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def ops_required(view: F) -> F:
    """Refuse (403) a signed-in viewer; only ``ops`` users run operations."""

    @functools.wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        user = current_user()
        if user is None or user.role != Role.OPS.value:
            return render_template("console/error.html", status=403, message="ops_only"), 403
        return view(*args, **kwargs)

    return cast(F, wrapped)


def local_time(at: datetime | None) -> str:
    """``at`` in the company's timezone with the zone's name: ``2026-11-30 10:05 JST``."""
    if at is None:
        return "–"
    local = at.astimezone(company_zone())
    zone = local.tzname() or ""
    return local.strftime("%Y-%m-%d %H:%M ") + (zone if zone.isalpha() else local.strftime("UTC%z"))


def percent(share: float | None) -> str:
    """A share as people read it: ``83%``; ``–`` when unknown."""
    return "–" if share is None else f"{100 * share:.0f}%"


def hours(value: float | None) -> str:
    """Business hours with one decimal; ``–`` when unknown."""
    return "–" if value is None else f"{value:.1f}"


def _secret(settings: Settings) -> str | None:
    token = settings.ops_token.get_secret_value() if settings.ops_token else None
    if token is not None and len(token) < MIN_SECRET_LENGTH:
        raise ConfigError(
            [
                Problem(
                    "environment",
                    1,
                    1,
                    f"TASUKI_OPS_TOKEN must have at least {MIN_SECRET_LENGTH} characters",
                )
            ]
        )
    return token


class ConsoleSessions(SecureCookieSessionInterface):
    """Signed-cookie sessions on the console's pages only. A webhook (or ``/metrics``) carries
    no session and never writes one: its request gets the null session without a cookie being
    read or a signer being built, which is most of what Flask spends on a session."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(bp.url_prefix or "/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


def init_app(app: Flask, settings: Settings) -> None:
    """Attach the console to ``app``: blueprint, sessions, CSRF, language, login limit, OIDC.

    Without ``TASUKI_OPS_TOKEN`` the console's pages answer 404 with the reason (no session
    can be signed without a secret); a token shorter than :data:`MIN_SECRET_LENGTH` is a
    :class:`ConfigError`."""
    # lazy: the views and sign-in pages put their routes on this module's blueprint (they
    # import it); they join it when an app is built, so this module never imports them back.
    from tasuki.console import auth, views  # noqa: F401

    secret = _secret(settings)
    if secret is not None:
        app.secret_key = secret
    app.session_interface = ConsoleSessions()
    app.config.update(
        SESSION_COOKIE_NAME="tasuki_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.console.secure_cookies,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        WTF_CSRF_CHECK_DEFAULT=False,  # webhooks are signed, not sessions: checked per view
        WTF_CSRF_TIME_LIMIT=None,  # valid as long as the session
        BABEL_TRANSLATION_DIRECTORIES=str(PACKAGE / "translations"),
        BABEL_DEFAULT_LOCALE=LANGUAGES[0],
    )
    csrf.init_app(app)
    app.extensions["tasuki_login_throttle"] = LoginThrottle(settings.redis_url or "memory://")
    Babel(app, locale_selector=select_locale)
    auth.init_oidc(app, settings)
    app.jinja_env.filters.update(local_time=local_time, percent=percent, hours=hours)
    app.register_blueprint(bp)

    @app.get("/")
    def _root() -> ResponseReturnValue:
        return redirect(url_for("console.overview"))


@bp.before_request
def _guard() -> ResponseReturnValue | None:
    if not console_settings().ops_token:
        # Off by configuration, not broken: 404 with the reason (no request's fault is a 5xx).
        return render_template("console/error.html", status=404, message="no_secret"), 404
    if request.method == "POST":
        csrf.protect()
    return None


@bp.after_request
def _headers(response: Any) -> Any:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.errorhandler(CSRFError)
def _csrf_error(exc: CSRFError) -> ResponseReturnValue:
    return render_template("console/error.html", status=400, message="csrf"), 400


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    return render_template(
        "console/error.html", status=status, message="http", detail=exc.description
    ), status
