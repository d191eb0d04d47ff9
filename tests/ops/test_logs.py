"""One logging setup for every process: JSON or text lines with the context that applies, an
access log that never shows a query string or a header, start lines with passwords masked, and
no secret in any line of a full demo run or of a serve, worker and scheduler process."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from tasuki import logs
from tasuki.errors import ConfigError
from tasuki.settings import Settings, load_settings, masked_url
from tasuki.store.db import Store
from tests.notices import taking_client
from webhooks import create_app
from webhooks.local import signed_headers

SECRETS = {
    "TASUKI_WEBHOOK_SECRET": "whsec-0b9e5c1d7a3f4e2b",
    "TASUKI_METRICS_TOKEN": "mtok-61c2f0a9d8e7b5c4",
    "TASUKI_OPS_TOKEN": "opstok-4d3c2b1a0f9e8d7c",
    "TASUKI_ZOOM_SECRET_TOKEN": "zoomsec-9a8b7c6d5e4f3a2b",
    "TASUKI_MIITEL_TOKEN": "miitok-1f2e3d4c5b6a7988",
    "TASUKI_HUBSPOT_ACCESS_TOKEN": "pat-na1-0f1e2d3c-4b5a-6978",
}
DB_PASSWORD = "dbpw-5e6f7a8b9c0d1e2f"
REDIS_PASSWORD = "rdpw-2a3b4c5d6e7f8091"
ALL_SECRETS = [*SECRETS.values(), DB_PASSWORD, REDIS_PASSWORD]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the process's logging back as it was after a test that ran :func:`logs.setup`."""
    root = logging.getLogger()
    names = (*logs.OWN_LOGGERS, "rq.worker", "rq.job", "rq.cron", "rq.scheduler")
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in names]
    rq_state = [
        (logging.getLogger(n), list(logging.getLogger(n).handlers), logging.getLogger(n).propagate)
        for n in names
        if n.startswith("rq.")
    ]
    handlers, level = list(root.handlers), root.level
    yield
    for logger, lvl in saved:
        logger.setLevel(lvl)
    for logger, hs, propagate in rq_state:
        logger.handlers[:] = hs
        logger.propagate = propagate
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def _settings(settings: Settings, **changes: Any) -> Settings:
    secrets = {k: SecretStr(v) for k, v in SECRETS.items()}
    return dataclasses.replace(
        settings,
        secrets=secrets,
        webhook_secret=secrets["TASUKI_WEBHOOK_SECRET"],
        metrics_token=secrets["TASUKI_METRICS_TOKEN"],
        ops_token=secrets["TASUKI_OPS_TOKEN"],
        database_url=f"postgresql+psycopg://tasuki:{DB_PASSWORD}@db.example:5432/tasuki",
        redis_url=f"redis://default:{REDIS_PASSWORD}@redis.example:6379/0",
        **changes,
    )


def _no_secret(text: str) -> None:
    for value in ALL_SECRETS:
        assert value not in text, f"secret {value[:6]}… in the log"


def test_level_and_format_are_settings_checked_at_start(tmp_path: Path) -> None:
    base = {"TASUKI_DATA_DIR": str(tmp_path)}
    default = load_settings(base)
    assert (default.log_level, default.log_format, default.metrics_token) == (None, "text", None)
    chosen = load_settings(
        {
            **base,
            "TASUKI_LOG_LEVEL": "debug",
            "TASUKI_LOG_FORMAT": "JSON",
            "TASUKI_METRICS_TOKEN": "abc",
        }
    )
    assert (chosen.log_level, chosen.log_format) == ("DEBUG", "json")
    assert chosen.metrics_token is not None and "abc" not in repr(chosen)
    with pytest.raises(ConfigError) as caught:
        load_settings({**base, "TASUKI_LOG_LEVEL": "loud", "TASUKI_LOG_FORMAT": "xml"})
    assert sorted(p.message for p in caught.value.problems) == [
        "TASUKI_LOG_FORMAT must be text or json, not 'xml'",
        "TASUKI_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, not 'LOUD'",
    ]


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_the_context_and_never_a_secret(settings: Settings) -> None:
    out = io.StringIO()
    logs.setup(_settings(settings, log_level="DEBUG", log_format="json"), "worker", stream=out)
    with logs.bound(provider="hubspot", delivery_id="d-1", record_id="006A"):
        logging.getLogger("tasuki.sync").debug(
            "token was %s", SECRETS["TASUKI_HUBSPOT_ACCESS_TOKEN"]
        )
    logging.getLogger("rq.worker").info("Worker rq:worker:1: started")
    logging.getLogger("connectors.salesforce").warning("login as tasuki:%s", DB_PASSWORD)
    # A library stays at WARNING whatever TASUKI_LOG_LEVEL says (SQLAlchemy would log every
    # statement with its parameters).
    logging.getLogger("sqlalchemy.engine.Engine").info("SELECT secret")
    try:
        raise RuntimeError(f"refused {SECRETS['TASUKI_WEBHOOK_SECRET']}")
    except RuntimeError:
        logging.getLogger("worker").exception("job failed")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(d["logger"], d["level"]) for d in lines] == [
        ("tasuki.sync", "DEBUG"),
        ("rq.worker", "INFO"),
        ("connectors.salesforce", "WARNING"),
        ("worker", "ERROR"),
    ]
    first = lines[0]
    assert first["message"] == "token was **********"
    assert {k: first[k] for k in ("provider", "delivery_id", "record_id", "process")} == {
        "provider": "hubspot",
        "delivery_id": "d-1",
        "record_id": "006A",
        "process": "worker",
    }
    assert first["timestamp"].endswith("Z") and first["pid"] == os.getpid()
    assert "provider" not in lines[1]  # the context ended with the block
    assert "RuntimeError: refused **********" in lines[3]["exception"]
    _no_secret(out.getvalue())


@pytest.mark.usefixtures("restore_logging")
def test_text_lines_and_the_start_line_mask_passwords(settings: Settings) -> None:
    out = io.StringIO()
    s = _settings(settings)
    logs.setup(s, "scheduler", stream=out)
    logs.started("scheduler", s)
    logging.getLogger("tasuki.kpis").debug("not at INFO")
    line = out.getvalue()
    assert line.count("\n") == 1
    assert " INFO scheduler tasuki tasuki scheduler starting (pid " in line
    assert "store=postgresql+psycopg://tasuki:***@db.example:5432/tasuki" in line
    assert "redis=redis://default:***@redis.example:6379/0" in line
    for shown in (f"queue={s.config.queue_name}", "crm=local", f"config={s.config_path}"):
        assert f" {shown}" in line
    _no_secret(line)


@pytest.mark.usefixtures("restore_logging")
def test_waitress_queue_depth_is_one_line_per_ten_seconds_with_the_deepest(
    settings: Settings,
) -> None:
    """A burst makes waitress warn once per waiting request; the log keeps one line per
    period, naming the deepest queue of the warnings it stands for. Setup twice: one filter."""
    out = io.StringIO()
    logs.setup(settings, "serve", stream=out)
    logs.setup(settings, "serve", stream=out)
    queue_log = logging.getLogger("waitress.queue")
    (depth,) = [f for f in queue_log.filters if isinstance(f, logs.QueueDepth)]
    now = [100.0]
    depth.clock = lambda: now[0]
    for n in (1, 3, 7, 2):
        queue_log.warning("Task queue depth is %d", n)  # as waitress.task logs it
    now[0] += logs.QUEUE_DEPTH_EVERY_SECONDS
    for n in (4, 2):
        queue_log.warning("Task queue depth is %d", n)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "Task queue depth is 1 (the deepest of 1 such warnings in 10 s)" in lines[0]
    # The second line stands for the three folded after the first, and itself: deepest 7.
    assert "Task queue depth is 7 (the deepest of 4 such warnings in 10 s)" in lines[1]


@pytest.mark.usefixtures("restore_logging")
def test_the_access_log_names_the_request_never_its_query_or_headers(
    settings: Settings, sqlite_store: Store
) -> None:
    out = io.StringIO()
    s = dataclasses.replace(_settings(settings, log_format="json"), database_url="sqlite://")
    logs.setup(s, "serve", stream=out)
    app = create_app(s, store=sqlite_store)
    body = json.dumps(
        {"notices": [{"id": "n-77", "object": "Lead", "record_ids": ["00Q1"], "changed_by": "u"}]}
    ).encode()
    secret = SECRETS["TASUKI_WEBHOOK_SECRET"]
    with taking_client(app) as client:
        answered = client.post(
            "/webhooks/local", data=body, headers=signed_headers(secret, body)
        ).status_code
        client.get(f"/healthz?token={SECRETS['TASUKI_OPS_TOKEN']}&x=1")
        client.get(
            "/metrics", headers={"Authorization": f"Bearer {SECRETS['TASUKI_METRICS_TOKEN']}"}
        )
    access = [
        json.loads(line)
        for line in out.getvalue().splitlines()
        if json.loads(line)["logger"] == "webhooks.access"
    ]
    assert [(a["method"], a["path"], a["status"]) for a in access] == [
        ("POST", "/webhooks/local", answered),
        ("GET", "/healthz", access[1]["status"]),
        ("GET", "/metrics", 200),
    ]
    assert access[0]["provider"] == "local" and access[0]["delivery_id"] == "n-77"
    assert all(a["remote_addr"] == "127.0.0.1" and a["duration_ms"] >= 0 for a in access)
    assert "provider" not in access[1] and "delivery_id" not in access[1]
    text = out.getvalue()
    assert "token=" not in text and "x=1" not in text and "X-Tasuki-Signature" not in text
    _no_secret(text)


# -- whole processes ------------------------------------------------------------------------------


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASUKI_")}
    env.update(SECRETS)
    env.update(
        {
            "TASUKI_DATA_DIR": str(tmp_path / "data"),
            "TASUKI_LOG_FORMAT": "json",
            "TASUKI_LOG_LEVEL": "DEBUG",
        }
    )
    env.update(extra)
    return env


def _with_password(url: str, password: str) -> str:
    return make_url(url).set(password=password).render_as_string(hide_password=False)


def _redis_with_password(url: str) -> str:
    """``url`` signing in as Redis's default user (which takes any password without ACLs)."""
    parts = urlsplit(url)
    netloc = f"default:{REDIS_PASSWORD}@{parts.hostname}:{parts.port or 6379}"
    return urlunsplit(parts._replace(netloc=netloc))


def _json_lines(stderr: str) -> list[dict[str, object]]:
    """Every line of a process's log, each of which must be one JSON object."""
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def _config_with_queue(tmp_path: Path) -> Path:
    """A tasuki.yaml naming a queue of this test's own on the shared Redis."""
    config = tmp_path / "tasuki.yaml"
    default = load_settings({"TASUKI_DATA_DIR": str(tmp_path)}).config_path
    config.write_text(
        default.read_text(encoding="utf-8") + f"\nqueue_name: logs-{uuid.uuid4().hex[:8]}\n",
        encoding="utf-8",
    )
    return config


def test_a_full_demo_run_logs_no_secret(
    tmp_path: Path, own_postgres_url: str, redis_url: str
) -> None:
    """The demo on PostgreSQL and Redis URLs with passwords, every secret set, DEBUG, JSON."""
    postgres_url = own_postgres_url
    env = _env(
        tmp_path,
        TASUKI_DATABASE_URL=_with_password(postgres_url, DB_PASSWORD),
        TASUKI_REDIS_URL=_redis_with_password(redis_url),
        TASUKI_CONFIG=str(_config_with_queue(tmp_path)),
    )
    done = subprocess.run(
        [sys.executable, "-m", "tasuki", "demo", "--leads", "60", "--until", "2026-11-20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = _json_lines(done.stderr)
    _no_secret(done.stdout + done.stderr)
    by_logger: dict[str, list[dict[str, object]]] = {}
    for d in lines:
        by_logger.setdefault(str(d["logger"]), []).append(d)
    start = by_logger["tasuki"][0]
    assert start["store"] == masked_url(_with_password(postgres_url, DB_PASSWORD))
    assert str(start["redis"]).startswith("redis://default:***@")
    # Every request in the access log (MiiTel's carries its token in a header), with provider
    # and delivery id; RQ's own lines and the jobs' lines with the job's id.
    access = by_logger["webhooks.access"]
    assert {a["provider"] for a in access} >= {"local", "zoom", "miitel"}
    assert all(a["status"] == 200 and "delivery_id" in a for a in access)
    assert by_logger["rq.worker"]
    # Each job's outcome line carries its job id and what it worked on.
    ran = by_logger["tasuki.ops.runs"]
    assert ran and all("job_id" in d and "job" in d for d in ran)
    syncs = [d for d in ran if d["job"] == "sync_records"]
    assert syncs and all("object" in d and "record_id" in d for d in syncs)
    assert all(len(d) >= 6 for d in lines)


@pytest.fixture
def own_postgres_url(postgres_url: str) -> Iterator[str]:
    """A database of this test's own on the PostgreSQL server: the processes under test leave
    their data behind, which the session's shared database must not see."""
    from sqlalchemy import create_engine, text

    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = f"tasuki_logs_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_until(proc: subprocess.Popen[str], needle: str, seen: list[str]) -> None:
    deadline = time.monotonic() + 60
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return
    raise AssertionError(f"{needle!r} not logged:\n{''.join(seen)[-3000:]}")


def _stop(proc: subprocess.Popen[str], seen: list[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    return "".join(seen) + err


def test_serve_worker_and_scheduler_start_lines_and_logs_hold_no_secret(
    tmp_path: Path, own_postgres_url: str, redis_url: str
) -> None:
    postgres_url = own_postgres_url
    store = _with_password(postgres_url, DB_PASSWORD)
    redis_with_password = _redis_with_password(redis_url)
    env = _env(
        tmp_path,
        TASUKI_DATABASE_URL=store,
        TASUKI_REDIS_URL=redis_with_password,
        TASUKI_CONFIG=str(_config_with_queue(tmp_path)),
        TASUKI_LOG_LEVEL="INFO",
    )
    port = _free_port()
    tasuki = [sys.executable, "-m", "tasuki"]
    serve = subprocess.Popen(
        [*tasuki, "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True
    )
    seen: list[str] = []
    try:
        _read_until(serve, "Serving on", seen)
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/healthz?token={SECRETS['TASUKI_OPS_TOKEN']}") as r:
            assert r.status == 200
        request = urllib.request.Request(
            f"{base}/metrics",
            headers={"Authorization": f"Bearer {SECRETS['TASUKI_METRICS_TOKEN']}"},
        )
        with urllib.request.urlopen(request) as r:
            assert b"tasuki_queue_jobs" in r.read()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(
                urllib.request.Request(f"{base}/webhooks/local", data=b"{}", method="POST")
            )
        assert refused.value.code == 401
        refused.value.close()
        _read_until(serve, '"status": 401', seen)
    finally:
        served = _stop(serve, seen)
    worked = subprocess.run(
        [*tasuki, "worker", "--burst"], env=env, capture_output=True, text=True, timeout=120
    )
    assert worked.returncode == 0, worked.stderr[-3000:]
    scheduler = subprocess.Popen([*tasuki, "scheduler"], env=env, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        _read_until(scheduler, "scheduler", seen)
        _read_until(scheduler, "starting", seen)
    finally:
        scheduled = _stop(scheduler, seen)

    for process, text in (("serve", served), ("worker", worked.stderr), ("scheduler", scheduled)):
        _no_secret(text)
        lines = _json_lines(text)
        assert {d["process"] for d in lines} == {process}
        start = next(d for d in lines if str(d["message"]).startswith(f"tasuki {process} starting"))
        assert start["store"] == masked_url(_with_password(postgres_url, DB_PASSWORD))
        assert str(start["redis"]).startswith("redis://default:***@")
        assert start["crm"] == "local" and str(start["config"]).endswith("tasuki.yaml")
        if process == "serve":
            assert start["address"] == f"http://127.0.0.1:{port}"
    access = [d for d in _json_lines(served) if d["logger"] == "webhooks.access"]
    assert [(d["method"], d["path"], d["status"]) for d in access] == [
        ("GET", "/healthz", 200),
        ("GET", "/metrics", 200),
        ("POST", "/webhooks/local", 401),
    ]
    # RQ's worker lines come through the same setup: JSON, process "worker".
    assert any(d["logger"] == "rq.worker" for d in _json_lines(worked.stderr))
