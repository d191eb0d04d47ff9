"""Signing in and out: no page without a session, local accounts, OpenID Connect against the
test provider of :mod:`tests.console.idp`, roles, CSRF, the login rate limit, one-time links."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from rq import Queue

from tasuki.console.accounts import (
    AccountError,
    Role,
    add_user,
    check_password,
    list_users,
    login_link_token,
    remove_user,
)
from tasuki.settings import Settings
from tasuki.signin import ConsoleSettings
from tasuki.store.db import Store
from tests.console.idp import CLIENT_ID, CLIENT_SECRET, IdentityProvider, running_provider
from tests.console.support import PASSWORD, csrf_token, sign_in
from webhooks import create_app

PAGES = [
    "/console/",
    "/console/boundaries",
    "/console/handoffs",
    "/console/handoffs/1",
    "/console/people",
    "/console/explain?kpi=mk_mqls",
    "/console/?format=csv&table=funnel",
    "/console/handoffs?format=csv&table=handoffs",
]


@pytest.mark.parametrize("path", PAGES)
def test_no_page_csv_or_chart_without_a_session(app: Flask, path: str) -> None:
    response = app.test_client().get(path)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/console/login"


def test_a_wrong_password_is_refused_and_a_right_one_signs_in(app: Flask) -> None:
    client = app.test_client()
    assert sign_in(client, "olivia", "wrong password!") == 401
    assert client.get("/console/").status_code == 302
    assert sign_in(client, "nobody") == 401
    assert sign_in(client, "olivia") == 302
    assert client.get("/console/").status_code == 200


def test_the_session_cookie_is_httponly_and_samesite(app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client)
    response = client.post(
        "/console/login", data={"username": "olivia", "password": PASSWORD, "csrf_token": token}
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_behind_https_the_session_cookie_is_secure(
    console_settings: Settings, store: Store, console_queue: Queue, org: dict[str, int]
) -> None:
    settings = dataclasses.replace(
        console_settings,
        console=ConsoleSettings.from_env({"TASUKI_PUBLIC_URL": "https://tasuki.example.com"}),
    )
    client = create_app(settings, store=store, queue=console_queue).test_client()
    token = csrf_token(client)
    response = client.post(
        "/console/login", data={"username": "olivia", "password": PASSWORD, "csrf_token": token}
    )
    assert "Secure" in response.headers["Set-Cookie"]


def test_a_post_without_the_csrf_token_is_refused(app: Flask, ops: FlaskClient) -> None:
    response = app.test_client().post(
        "/console/login", data={"username": "olivia", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert ops.post("/console/ops/compute-kpis").status_code == 400
    assert ops.post("/console/logout").status_code == 400


def test_a_viewer_is_refused_an_ops_action_an_ops_user_is_not(
    viewer: FlaskClient, ops: FlaskClient, console_queue: Queue
) -> None:
    refused = viewer.post(
        "/console/ops/compute-kpis", data={"csrf_token": csrf_token(viewer, "/console/")}
    )
    assert refused.status_code == 403
    assert console_queue.count == 0
    done = ops.post("/console/ops/compute-kpis", data={"csrf_token": csrf_token(ops, "/console/")})
    assert done.status_code == 202
    assert console_queue.count == 1


def test_logout_ends_the_session(ops: FlaskClient) -> None:
    token = csrf_token(ops, "/console/")
    assert ops.post("/console/logout", data={"csrf_token": token}).status_code == 302
    assert ops.get("/console/").status_code == 302


def test_a_disabled_user_loses_their_session(ops: FlaskClient, store: Store) -> None:
    remove_user(store, "olivia")
    assert ops.get("/console/").status_code == 302
    assert check_password(store, "olivia", PASSWORD) is None


def test_login_is_rate_limited(app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client)
    answers = [
        client.post(
            "/console/login",
            data={"username": "olivia", "password": "guess-number-x", "csrf_token": token},
        ).status_code
        for _ in range(12)
    ]
    assert answers[:10] == [401] * 10
    assert answers[10:] == [429, 429]


def test_passwords_are_hashed_with_scrypt(store: Store) -> None:
    add_user(store, "sam", Role.VIEWER, "a long password")
    (sam,) = [u for u in list_users(store) if u.username == "sam"]
    assert sam.password_hash and sam.password_hash.startswith("scrypt:")
    assert "a long password" not in sam.password_hash
    with pytest.raises(AccountError, match="at least 10"):
        add_user(store, "tim", Role.VIEWER, "short")
    with pytest.raises(AccountError, match="exists"):
        add_user(store, "sam", Role.OPS, "another long one")


def test_a_one_time_link_signs_in_once(app: Flask, store: Store) -> None:
    token = login_link_token(store, "victor")
    client = app.test_client()
    assert client.get(f"/console/login/link/{token}").status_code == 302
    assert client.get("/console/").status_code == 200
    again = app.test_client().get(f"/console/login/link/{token}")
    assert again.status_code == 403


def test_without_the_ops_token_the_console_says_why(
    settings: Settings, store: Store, console_queue: Queue
) -> None:
    client = create_app(settings, store=store, queue=console_queue).test_client()
    response = client.get("/console/login")
    assert response.status_code == 404
    assert "TASUKI_OPS_TOKEN" in response.get_data(as_text=True)


def test_a_short_ops_token_refuses_to_start(settings: Settings, store: Store) -> None:
    from tasuki.errors import ConfigError

    with pytest.raises(ConfigError, match="TASUKI_OPS_TOKEN"):
        create_app(dataclasses.replace(settings, ops_token=SecretStr("short")), store=store)


def test_next_never_leaves_the_site(app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client)
    response = client.post(
        "/console/login",
        data={
            "username": "olivia",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "https://evil.example/console/",
        },
    )
    assert response.headers["Location"] == "/console/"


# -- OpenID Connect -----------------------------------------------------------------------------


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    with running_provider() as provider:
        yield provider


@pytest.fixture
def oidc_app(
    console_settings: Settings,
    store: Store,
    console_queue: Queue,
    org: dict[str, int],
    idp: IdentityProvider,
) -> Flask:
    env = {
        "TASUKI_OIDC_ISSUER": idp.issuer,
        "TASUKI_OIDC_CLIENT_ID": CLIENT_ID,
        "TASUKI_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "TASUKI_OIDC_NAME": "Example SSO",
        "TASUKI_OIDC_DOMAINS": "example.com",
    }
    settings = dataclasses.replace(console_settings, console=ConsoleSettings.from_env(env))
    return create_app(settings, store=store, queue=console_queue)


def _through_the_provider(client: FlaskClient) -> int:
    """Follow the sign-in through the provider; the callback's status."""
    start = client.get("/console/login/oidc?next=/console/people")
    assert start.status_code == 302
    at_idp = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    assert at_idp.status_code == 302, at_idp.text
    back = urlsplit(at_idp.headers["Location"])
    assert back.path == "/console/auth/callback"
    done = client.get(f"{back.path}?{back.query}")
    if done.status_code == 302:
        assert done.headers["Location"] == "/console/people"
    return done.status_code


def test_oidc_signs_in_a_verified_address_of_an_allowed_domain_as_viewer(
    oidc_app: Flask, idp: IdentityProvider, store: Store
) -> None:
    client = oidc_app.test_client()
    assert "Example SSO" in client.get("/console/login").get_data(as_text=True)
    assert _through_the_provider(client) == 302
    assert client.get("/console/people").status_code == 200
    (oscar,) = [u for u in list_users(store) if u.email == "oscar@example.com"]
    assert oscar.role == "viewer" and oscar.password_hash is None
    assert idp.tokens_issued == 1


def test_oidc_refuses_an_unknown_address_of_another_domain(
    oidc_app: Flask, idp: IdentityProvider
) -> None:
    idp.user = {"sub": "u-2", "email": "eve@elsewhere.example", "email_verified": True}
    client = oidc_app.test_client()
    assert _through_the_provider(client) == 403
    assert client.get("/console/").status_code == 302


def test_oidc_matches_a_user_added_for_it_with_their_role(
    oidc_app: Flask, idp: IdentityProvider, store: Store
) -> None:
    add_user(store, "pat@partner.example", Role.OPS)
    idp.user = {"sub": "u-3", "email": "Pat@Partner.example", "email_verified": True}
    client = oidc_app.test_client()
    assert _through_the_provider(client) == 302
    assert 'id="compute-kpis"' in client.get("/console/").get_data(as_text=True)  # ops only


def test_oidc_refuses_an_unverified_address(oidc_app: Flask, idp: IdentityProvider) -> None:
    idp.user = {"sub": "u-4", "email": "oscar@example.com", "email_verified": False}
    assert _through_the_provider(oidc_app.test_client()) == 403


def test_oidc_refuses_a_forged_callback(oidc_app: Flask) -> None:
    client = oidc_app.test_client()
    client.get("/console/login/oidc")
    response = client.get("/console/auth/callback?code=made-up&state=made-up")
    assert response.status_code == 401


def test_the_demo_link_signs_in_an_ops_user_once(app: Flask, store: Store) -> None:
    from tasuki.console.demo import demo_link

    link = demo_link(store, "http://127.0.0.1:8080")
    path = urlsplit(link).path
    client = app.test_client()
    assert client.get(path).status_code == 302
    assert 'id="compute-kpis"' in client.get("/console/").get_data(as_text=True)
    assert app.test_client().get(path).status_code == 403
    (demo,) = [u for u in list_users(store) if u.username == "demo"]
    assert demo.role == "ops" and demo.password_hash is None
    assert check_password(store, "demo", "") is None


def test_the_demo_link_needs_the_demo_data(settings: Settings, store: Store) -> None:
    from tasuki.console.demo import NoDemoData, demo_link

    with pytest.raises(NoDemoData, match="make demo"):
        demo_link(store, "http://127.0.0.1:8080")
