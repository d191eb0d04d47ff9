"""An emulator of the Slack Web API methods tasuki uses, served over HTTP on 127.0.0.1.

The unmodified ``slack_sdk`` ``WebClient`` talks to it through its ``base_url``
(``http://127.0.0.1:PORT/api/``). What it keeps of Slack's behaviour:

- every method is ``POST /api/<method>`` (``slack_sdk`` posts every method, JSON for
  ``chat.postMessage``, form-encoded otherwise) and ``GET`` with query arguments; the token
  comes as ``Authorization: Bearer xoxb-…`` or as a ``token`` argument;
- answers are HTTP 200 ``{"ok": true, …}`` or ``{"ok": false, "error": "<code>"}`` (Slack
  reports most failures with a 200 and an error code): ``not_authed``, ``invalid_auth``,
  ``token_revoked``, ``missing_scope`` (with ``needed`` and ``provided``),
  ``channel_not_found``, ``not_in_channel``, ``is_archived``, ``no_text``, ``invalid_blocks``,
  ``msg_too_long``, ``users_not_found``, ``invalid_arguments``;
- every answer carries ``X-OAuth-Scopes`` (the token's scopes) and
  ``X-Accepted-OAuth-Scopes`` (what the method takes);
- ``chat.postMessage`` with ``text``, ``blocks`` (at most 50) and ``thread_ts``; posting to a
  user id (``U…``/``W…``) goes to the bot's direct-message channel with that user (``D…``);
  a public channel the bot is not in refuses unless the token has ``chat:write.public``;
- ``users.lookupByEmail`` (scope ``users:read.email``), ``conversations.info`` (scope
  ``channels:read``), ``auth.test``;
- rate limits as Slack signals them: HTTP 429, ``Retry-After: <seconds>`` and
  ``{"ok": false, "error": "ratelimited"}``;
- injected server errors: a 5xx before anything happens (``service_unavailable``), or after the
  message was posted (``internal_error``: Slack documents that "some aspect of the operation"
  may have succeeded), and a connection dropped without an answer.

Everything a client did is kept for assertions: :attr:`Workspace.messages` (what was posted,
in order), :attr:`Workspace.calls` (answers per method, faults included) and
:attr:`Workspace.log` (method, HTTP status, error code of every request).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

TEAM_ID = "T0TASUKI01"
BOT_USER = "U0TASUKIBOT"
BOT_ID = "B0TASUKIBOT"
APP_ID = "A0TASUKIAPP"
BOT_SCOPES = ("chat:write", "users:read", "users:read.email", "channels:read")
"""What the Slack app of docs/notifications.md asks for."""
MAX_BLOCKS = 50
MAX_TEXT = 40_000
"""chat.postMessage truncates text longer than this; far longer is refused (``msg_too_long``)."""

METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("chat:write",),
    "users.lookupByEmail": ("users:read.email",),
    "conversations.info": ("channels:read", "groups:read", "im:read", "mpim:read"),
    "auth.test": (),
}
"""Scopes each method accepts (any one of them will do)."""


@dataclass
class User:
    """A member of the workspace."""

    id: str
    email: str
    name: str
    real_name: str
    deleted: bool = False
    tz: str = "Asia/Tokyo"

    def as_json(self) -> dict[str, Any]:
        """The user object as ``users.lookupByEmail`` returns it."""
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": self.real_name,
            "tz": self.tz,
            "is_bot": False,
            "is_app_user": False,
            "profile": {
                "email": self.email,
                "real_name": self.real_name,
                "display_name": self.name,
                "team": TEAM_ID,
            },
        }


@dataclass
class Channel:
    """A conversation: a public or private channel, or a direct-message channel."""

    id: str
    name: str
    is_private: bool = False
    is_member: bool = True
    is_archived: bool = False
    is_im: bool = False
    user: str | None = None
    """The other member of a direct-message channel."""

    def as_json(self) -> dict[str, Any]:
        """The conversation object as ``conversations.info`` returns it."""
        if self.is_im:
            return {
                "id": self.id,
                "created": 1_700_000_000,
                "is_im": True,
                "is_org_shared": False,
                "user": self.user,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_general": False,
            "is_member": self.is_member,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "created": 1_700_000_000,
            "creator": "U0CREATOR01",
            "context_team_id": TEAM_ID,
        }


@dataclass
class Token:
    """A bot token and its state."""

    scopes: tuple[str, ...] = BOT_SCOPES
    revoked: bool = False


@dataclass
class Posted:
    """One message the workspace accepted."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    args: dict[str, Any]
    """Every argument as sent."""


@dataclass
class Fault:
    """Answer ``times`` calls of ``method`` (``any``: every method) with a fault, after letting
    ``after`` of them through.

    ``kind``: ``ratelimited`` (429 + Retry-After), ``unavailable`` (503 ``service_unavailable``,
    nothing done), ``internal_error`` (500 after the work was done), ``drop`` (the connection
    closed without an answer, after the work was done)."""

    kind: str
    method: str = "any"
    times: int = 1
    after: int = 0
    retry_after: int = 1
    seen: int = 0


class SlackError(Exception):
    """An answer with ``ok: false``."""

    def __init__(self, error: str, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra


class Dropped(Exception):
    """Close the connection without an answer."""


class Workspace:
    """One emulated Slack workspace: its members, channels, the bot's tokens and what was
    posted. Tests arrange it through the Python methods and read it back the same way."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.tokens: dict[str, Token] = {}
        self.messages: list[Posted] = []
        self.calls: Counter[str] = Counter()
        self.log: list[tuple[str, int, str | None]] = []
        self.faults: list[Fault] = []
        self._seq = 0
        self._clock = 1_767_225_600  # message timestamps: seconds, and a sequence after the dot

    # -- what admins and people do in the workspace -------------------------------------------

    def _next(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}0{self._seq:08d}"

    def add_token(self, token: str, scopes: Iterable[str] = BOT_SCOPES) -> str:
        """A bot token with ``scopes``; returns it."""
        with self.lock:
            self.tokens[token] = Token(tuple(scopes))
        return token

    def revoke(self, token: str) -> None:
        """The token stops working (``token_revoked``), as when the app is uninstalled."""
        with self.lock:
            self.tokens[token].revoked = True

    def add_user(self, email: str, name: str = "", *, deleted: bool = False) -> str:
        """A member with ``email``; returns the user id."""
        with self.lock:
            uid = self._next("U")
            short = name or email.split("@")[0]
            self.users[uid] = User(uid, email, short, name or short, deleted)
            return uid

    def add_channel(
        self,
        name: str,
        *,
        private: bool = False,
        member: bool = True,
        archived: bool = False,
    ) -> str:
        """A channel (the bot a member unless ``member`` is False); returns its id."""
        with self.lock:
            cid = self._next("G" if private else "C")
            self.channels[cid] = Channel(cid, name, private, member, archived)
            return cid

    def inject(
        self,
        kind: str,
        method: str = "any",
        *,
        times: int = 1,
        after: int = 0,
        retry_after: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (after ``after`` good ones) with the
        fault ``kind`` (see :class:`Fault`)."""
        with self.lock:
            self.faults.append(Fault(kind, method, times, after, retry_after))

    def posted_to(self, channel: str) -> list[Posted]:
        """Messages in ``channel`` (an id, or a user id for direct messages), oldest first."""
        target = self._dm_for(channel).id if channel in self.users else channel
        return [m for m in self.messages if m.channel == target]

    # -- the API -------------------------------------------------------------------------------

    def _dm_for(self, user_id: str) -> Channel:
        for c in self.channels.values():
            if c.is_im and c.user == user_id:
                return c
        cid = f"D{user_id[1:]}"
        self.channels[cid] = Channel(cid, "", is_im=True, user=user_id)
        return self.channels[cid]

    def _fault(self, method: str) -> Fault | None:
        for f in self.faults:
            if f.method not in ("any", method) or f.times <= 0:
                continue
            if f.seen < f.after:
                f.seen += 1
                continue
            f.times -= 1
            return f
        return None

    def _token(self, method: str, token: str | None) -> Token:
        if not token:
            raise SlackError("not_authed")
        found = self.tokens.get(token)
        if found is None:
            raise SlackError("invalid_auth")
        if found.revoked:
            raise SlackError("token_revoked")
        accepted = METHOD_SCOPES[method]
        if accepted and not set(accepted) & set(found.scopes):
            raise SlackError(
                "missing_scope", needed=",".join(accepted), provided=",".join(found.scopes)
            )
        return found

    def call(self, method: str, token: str | None, args: Mapping[str, Any]) -> dict[str, Any]:
        """One method call: the answer's body, or :class:`SlackError` / :class:`Dropped`."""
        with self.lock:
            handler = _METHODS.get(method)
            if handler is None:
                raise SlackError("unknown_method", status=404)
            fault = self._fault(method)
            if fault is not None and fault.kind == "ratelimited":
                raise SlackError("ratelimited", status=429, retry_after=fault.retry_after)
            if fault is not None and fault.kind == "unavailable":
                raise SlackError("service_unavailable", status=503)
            granted = self._token(method, token)
            body = handler(self, granted, dict(args))
            if fault is not None and fault.kind == "internal_error":
                raise SlackError("internal_error", status=500)
            if fault is not None and fault.kind == "drop":
                raise Dropped()
            return body

    def _post_message(self, token: Token, args: dict[str, Any]) -> dict[str, Any]:
        channel_arg = str(args.get("channel") or "")
        if not channel_arg:
            raise SlackError("channel_not_found")
        channel = self._resolve_channel(channel_arg)
        if channel is None:
            raise SlackError("channel_not_found")
        if channel.is_archived:
            raise SlackError("is_archived")
        if not channel.is_member:
            if channel.is_private:
                raise SlackError("channel_not_found")
            if "chat:write.public" not in token.scopes:
                raise SlackError("not_in_channel")
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except json.JSONDecodeError:
                raise SlackError("invalid_blocks_format") from None
        if blocks is not None and (
            not isinstance(blocks, list)
            or len(blocks) > MAX_BLOCKS
            or not all(isinstance(b, dict) and "type" in b for b in blocks)
        ):
            raise SlackError("invalid_blocks")
        text = str(args.get("text") or "")
        if not text and not blocks:
            raise SlackError("no_text")
        if len(text) > 4 * MAX_TEXT:
            raise SlackError("msg_too_long")
        self._clock += 1
        ts = f"{self._clock}.{len(self.messages) + 1:06d}"
        thread_ts = args.get("thread_ts") or None
        self.messages.append(
            Posted(channel.id, ts, text[:MAX_TEXT], blocks or [], thread_ts, dict(args))
        )
        message: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": text[:MAX_TEXT],
            "ts": ts,
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
        }
        if blocks:
            message["blocks"] = blocks
        if thread_ts:
            message["thread_ts"] = thread_ts
        return {"ok": True, "channel": channel.id, "ts": ts, "message": message}

    def _resolve_channel(self, value: str) -> Channel | None:
        if value in self.users:
            return self._dm_for(value)
        if value in self.channels:
            return self.channels[value]
        name = value.removeprefix("#")
        for c in self.channels.values():
            if not c.is_im and c.name == name:
                return c
        return None

    def _lookup_by_email(self, token: Token, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "")
        if not email:
            raise SlackError("invalid_arguments")
        for user in self.users.values():
            if user.email.lower() == email.lower():
                return {"ok": True, "user": user.as_json()}
        raise SlackError("users_not_found")

    def _conversations_info(self, token: Token, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel") or ""))
        if channel is None or (channel.is_private and not channel.is_member):
            raise SlackError("channel_not_found")
        return {"ok": True, "channel": channel.as_json()}

    def _auth_test(self, token: Token, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://tasuki-test.slack.com/",
            "team": "tasuki test",
            "user": "tasuki",
            "team_id": TEAM_ID,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }


_METHODS = {
    "chat.postMessage": Workspace._post_message,
    "users.lookupByEmail": Workspace._lookup_by_email,
    "conversations.info": Workspace._conversations_info,
    "auth.test": Workspace._auth_test,
}


def _arguments(request: Request) -> dict[str, Any]:
    """The call's arguments from the query string, a form body or a JSON body (all merged)."""
    args: dict[str, Any] = dict(request.args.items())
    if request.mimetype == "application/json":
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            args.update(body)
    else:
        args.update(request.form.items())
    return args


def _token_of(request: Request, args: Mapping[str, Any]) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    token = args.get("token")
    return str(token) if token else None


class Emulator:
    """The WSGI app in front of one :class:`Workspace`."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self.respond(request)
        return response(environ, start_response)

    def respond(self, request: Request) -> Response:
        """Route ``/api/<method>`` to the workspace and shape its answer as Slack does."""
        ws = self.workspace
        method = request.path.removeprefix("/api/")
        args = _arguments(request)
        token = _token_of(request, args)
        granted = ws.tokens.get(token or "")
        headers = {
            "X-OAuth-Scopes": ",".join(granted.scopes) if granted else "",
            "X-Accepted-OAuth-Scopes": ",".join(METHOD_SCOPES.get(method, ())),
        }
        try:
            body = ws.call(method, token, args)
            status = 200
            error = None
        except SlackError as exc:
            status, error = exc.status, exc.error
            extra = {k: v for k, v in exc.extra.items() if k != "retry_after"}
            body = {"ok": False, "error": exc.error, **extra}
            if status == 429:
                headers["Retry-After"] = str(exc.extra["retry_after"])
        except Dropped:
            with ws.lock:
                ws.calls[method] += 1
                ws.log.append((method, 0, "dropped"))
            raise  # werkzeug closes the connection without a response
        with ws.lock:
            ws.calls[method] += 1
            ws.log.append((method, status, error))
        return Response(
            json.dumps(body),
            status=status,
            headers=headers,
            content_type="application/json; charset=utf-8",
        )


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        pass


@dataclass
class RunningSlack:
    """An emulator listening at ``base_url`` (what ``WebClient(base_url=…)`` takes)."""

    workspace: Workspace
    base_url: str
    server: BaseWSGIServer
    thread: threading.Thread
    started: float = field(default_factory=time.monotonic)

    def stop(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class _DroppingServerApp:
    """Turns :class:`Dropped` into a closed connection (werkzeug would answer 500)."""

    def __init__(self, app: Emulator) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        try:
            return self.app(environ, start_response)
        except Dropped:
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
            # werkzeug treats a connection error as the client gone: no answer, nothing logged.
            raise ConnectionResetError("dropped by the emulator") from None


def serve(workspace: Workspace) -> RunningSlack:
    """Serve ``workspace`` over HTTP on 127.0.0.1 (a free port)."""
    server = make_server(
        "127.0.0.1",
        0,
        _DroppingServerApp(Emulator(workspace)),
        threaded=True,
        request_handler=_QuietHandler,
    )
    url = f"http://127.0.0.1:{server.server_port}/api/"
    thread = threading.Thread(target=server.serve_forever, name="slack-emulator", daemon=True)
    thread.start()
    return RunningSlack(workspace, url, server, thread)
