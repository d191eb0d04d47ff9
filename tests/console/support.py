"""What the console tests share besides fixtures: constants, factories and helpers (the
fixtures in conftest.py use them too; tests import them from here, never from conftest)."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

OPS_TOKEN = "console-test-secret-0123456789"


PASSWORD = "correct horse battery"


def csrf_token(client: FlaskClient, path: str = "/console/login") -> str:
    """The CSRF token of the form on ``path``."""
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> int:
    """Post the login form; returns the status code."""
    token = csrf_token(client)
    response = client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": token},
    )
    return response.status_code
