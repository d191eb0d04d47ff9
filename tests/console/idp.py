"""A small OpenID Connect provider over real HTTP, for the console's sign-in tests.

Discovery document, JWKS, authorization endpoint (it signs in :attr:`IdentityProvider.user`
at once, as a provider does for a browser with a session) and token endpoint (authorization
code, client secret by HTTP Basic or in the body), ID tokens signed RS256 with
``joserfc``. It checks what a real provider checks: the client, the redirect URI, single
use of a code; it never trusts the client for claims.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Flask, abort, jsonify, redirect, request
from flask.typing import ResponseReturnValue
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

CLIENT_ID = "tasuki-console"
CLIENT_SECRET = "idp-client-secret-for-tests"


@dataclass
class IdentityProvider:
    """The provider's state: its key, who is signed in, codes given out."""

    issuer: str = ""
    user: dict[str, Any] = field(
        default_factory=lambda: {"sub": "u-1", "email": "oscar@example.com", "email_verified": True}
    )
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    key: Any = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "test-key"})
    )
    tokens_issued: int = 0

    def app(self) -> Flask:
        """The provider's HTTP endpoints."""
        app = Flask("idp")

        @app.get("/.well-known/openid-configuration")
        def discovery() -> ResponseReturnValue:
            return jsonify(
                issuer=self.issuer,
                authorization_endpoint=f"{self.issuer}/authorize",
                token_endpoint=f"{self.issuer}/token",
                jwks_uri=f"{self.issuer}/jwks",
                response_types_supported=["code"],
                subject_types_supported=["public"],
                id_token_signing_alg_values_supported=["RS256"],
                token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
                scopes_supported=["openid", "email", "profile"],
            )

        @app.get("/jwks")
        def jwks() -> ResponseReturnValue:
            return jsonify(keys=[self.key.as_dict(private=False)])

        @app.get("/authorize")
        def authorize() -> ResponseReturnValue:
            args = request.args
            if args.get("client_id") != CLIENT_ID or args.get("response_type") != "code":
                abort(400)
            if "openid" not in (args.get("scope") or "").split():
                abort(400)
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "redirect_uri": args["redirect_uri"],
                "nonce": args.get("nonce"),
                "user": dict(self.user),
            }
            query = urlencode({"code": code, "state": args.get("state", "")})
            return redirect(f"{args['redirect_uri']}?{query}")

        @app.post("/token")
        def token() -> ResponseReturnValue:
            client_id, client_secret = (
                request.form.get("client_id"),
                request.form.get("client_secret"),
            )
            auth = request.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                decoded = base64.b64decode(auth[6:]).decode()
                client_id, _, client_secret = decoded.partition(":")
            if client_id != CLIENT_ID or client_secret != CLIENT_SECRET:
                return jsonify(error="invalid_client"), 401
            grant = self.codes.pop(request.form.get("code", ""), None)
            if grant is None or request.form.get("grant_type") != "authorization_code":
                return jsonify(error="invalid_grant"), 400
            if grant["redirect_uri"] != request.form.get("redirect_uri"):
                return jsonify(error="invalid_grant"), 400
            now = int(time.time())
            claims = {
                "iss": self.issuer,
                "aud": CLIENT_ID,
                "iat": now,
                "exp": now + 300,
                **grant["user"],
            }
            if grant["nonce"]:
                claims["nonce"] = grant["nonce"]
            id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.key)
            self.tokens_issued += 1
            return jsonify(
                access_token=secrets.token_urlsafe(16),
                token_type="Bearer",
                expires_in=300,
                id_token=id_token,
            )

        return app


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free port of 127.0.0.1 in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


@contextmanager
def running_provider() -> Iterator[IdentityProvider]:
    """An :class:`IdentityProvider` served over HTTP, its issuer set to its URL."""
    idp = IdentityProvider()
    with serving(idp.app()) as url:
        idp.issuer = url
        yield idp
