"""Who may sign in to the console: local accounts, people from the identity provider, roles,
and one-time sign-in links.

Passwords are kept as scrypt hashes (werkzeug's ``generate_password_hash``, the standard
library's ``hashlib.scrypt`` underneath); a one-time link keeps only its token's SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from tasuki.errors import TasukiError
from tasuki.store.db import Store
from tasuki.store.models import ConsoleUser, LoginLink, utcnow

PASSWORD_METHOD = "scrypt"
"""How passwords are hashed (werkzeug's scrypt parameters)."""
MIN_PASSWORD_LENGTH = 10
"""Shorter passwords are refused."""
LINK_LIFETIME = timedelta(minutes=15)
"""How long a one-time sign-in link may wait for its first use."""
_UNUSABLE = generate_password_hash(secrets.token_hex(16), method=PASSWORD_METHOD)
"""Checked against when the account is unknown, so an unknown name costs the same time."""


class Role(str, Enum):
    """What a signed-in person may do."""

    VIEWER = "viewer"
    """Reads every page, table and CSV."""
    OPS = "ops"
    """Also runs operations actions."""


class AccountError(TasukiError):
    """A user cannot be added or changed as asked (the message says why)."""


def add_user(
    store: Store, username: str, role: Role, password: str | None = None, email: str = ""
) -> ConsoleUser:
    """Add a console user; without ``password`` they can only sign in through OpenID Connect
    (matched by ``email``, default: ``username`` when it is an address)."""
    username = username.strip()
    if not username:
        raise AccountError("a username is required")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    email = (email or (username if "@" in username else "")).strip().lower()
    with store.session() as s:
        if s.scalar(select(ConsoleUser.id).where(ConsoleUser.username == username)):
            raise AccountError(f"user {username!r} exists already")
        user = ConsoleUser(
            username=username,
            email=email,
            role=role.value,
            password_hash=None
            if password is None
            else generate_password_hash(password, method=PASSWORD_METHOD),
            disabled=False,
        )
        s.add(user)
        s.flush()
        s.refresh(user)
        s.expunge(user)
    return user


def set_password(store: Store, username: str, password: str) -> None:
    """Give ``username`` a new password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    with store.session() as s:
        user = s.scalar(select(ConsoleUser).where(ConsoleUser.username == username))
        if user is None:
            raise AccountError(f"no user {username!r}")
        user.password_hash = generate_password_hash(password, method=PASSWORD_METHOD)
        s.flush()


def remove_user(store: Store, username: str) -> None:
    """Disable ``username``: they can no longer sign in (their sessions end at the next request)."""
    with store.session() as s:
        user = s.scalar(select(ConsoleUser).where(ConsoleUser.username == username))
        if user is None:
            raise AccountError(f"no user {username!r}")
        user.disabled = True
        s.flush()


def list_users(store: Store) -> list[ConsoleUser]:
    """Every console user, by name."""
    with store.session() as s:
        users = list(s.scalars(select(ConsoleUser).order_by(ConsoleUser.username)))
        s.expunge_all()
    return users


def user_by_id(store: Store, user_id: int) -> ConsoleUser | None:
    """The enabled user with ``user_id``, or ``None``."""
    with store.session() as s:
        user = s.get(ConsoleUser, user_id)
        if user is None or user.disabled:
            return None
        s.expunge(user)
    return user


def _signed_in(store: Store, user_id: int) -> None:
    with store.session() as s:
        user = s.get(ConsoleUser, user_id)
        if user is not None:
            user.last_login_at = utcnow()
            s.flush()


def check_password(store: Store, username: str, password: str) -> ConsoleUser | None:
    """The user when ``password`` is theirs, else ``None`` (the same work either way)."""
    with store.session() as s:
        user = s.scalar(select(ConsoleUser).where(ConsoleUser.username == username.strip()))
        if user is not None:
            s.expunge(user)
    stored = user.password_hash if user is not None and user.password_hash else _UNUSABLE
    ok = check_password_hash(stored, password)
    if user is None or user.disabled or not user.password_hash or not ok:
        return None
    _signed_in(store, user.id)
    return user


def oidc_user(store: Store, email: str, allowed_domains: frozenset[str]) -> ConsoleUser | None:
    """The console user a verified ``email`` from the identity provider signs in as: the user
    with that address, else a new viewer when the address's domain is in ``allowed_domains``;
    ``None`` when neither."""
    email = email.strip().lower()
    if not email:
        return None
    with store.session() as s:
        user = s.scalar(
            select(ConsoleUser).where(ConsoleUser.email == email).order_by(ConsoleUser.id)
        )
        if user is None and email.rpartition("@")[2] in allowed_domains:
            user = ConsoleUser(username=email, email=email, role=Role.VIEWER.value, disabled=False)
            s.add(user)
            s.flush()
        if user is None or user.disabled:
            return None
        user.last_login_at = utcnow()
        s.flush()
        s.refresh(user)
        s.expunge(user)
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login_link_token(store: Store, username: str, now: datetime | None = None) -> str:
    """A new one-time sign-in token for ``username``, valid for :data:`LINK_LIFETIME`."""
    token = secrets.token_urlsafe(32)
    with store.session() as s:
        user = s.scalar(select(ConsoleUser).where(ConsoleUser.username == username))
        if user is None:
            raise AccountError(f"no user {username!r}")
        s.add(
            LoginLink(
                token_sha256=_digest(token),
                user_id=user.id,
                expires_at=(now or utcnow()) + LINK_LIFETIME,
            )
        )
        s.flush()
    return token


def spend_login_link(store: Store, token: str, now: datetime | None = None) -> ConsoleUser | None:
    """The user a one-time token signs in, spending it; ``None`` when unknown, used or expired."""
    now = now or utcnow()
    with store.session() as s:
        link = s.scalar(
            select(LoginLink).where(LoginLink.token_sha256 == _digest(token)).with_for_update()
        )
        if link is None or link.used_at is not None or link.expires_at <= now:
            return None
        link.used_at = now
        user = s.get(ConsoleUser, link.user_id)
        s.flush()
        if user is None or user.disabled:
            return None
        s.refresh(user)
        s.expunge(user)
    return user
