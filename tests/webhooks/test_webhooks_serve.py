"""``tasuki serve``: the app under waitress in its own process, over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from rq import Queue

from tasuki.cli import main
from tasuki.queue import job_queue
from tasuki.settings import builtin_path, load_settings
from webhooks.local import signed_headers

SECRET = "serve-test-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, redis_url: str, **extra: str) -> dict[str, str]:
    """A hermetic environment: the shipped config with a queue of its own, data in tmp_path."""
    config = tmp_path / "tasuki.yaml"
    queue_name = f"tasuki-test-{uuid.uuid4().hex[:8]}"
    config.write_text(builtin_path("tasuki.yaml").read_text() + f"\nqueue_name: {queue_name}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASUKI_")}
    env.update(
        TASUKI_CONFIG=str(config),
        TASUKI_DATA_DIR=str(tmp_path / "data"),
        TASUKI_REDIS_URL=redis_url,
        TASUKI_WEBHOOK_SECRET=SECRET,
    )
    env.update(extra)
    return env


def _call(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        err.close()
        return int(err.code)


def _log_of(folder: Path) -> str:
    return (folder / "serve.log").read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def served(tmp_path: Path, redis_url: str) -> Iterator[tuple[str, Queue]]:
    """``python -m tasuki serve`` on a free port: its base URL and its queue."""
    env = _env(tmp_path, redis_url)
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tasuki", "serve", "--port", str(port), "--threads", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    queue = job_queue(load_settings(env))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _call(f"{base}/healthz") == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"tasuki serve did not come up: {_log_of(tmp_path)}")
            time.sleep(0.1)
        yield base, queue
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        queue.empty()  # type: ignore[no-untyped-call]


def test_tasuki_serve_answers_signed_notices_over_http(
    served: tuple[str, Queue], tmp_path: Path
) -> None:
    base, queue = served
    notice = {"id": "http-1", "object": "Lead", "record_ids": ["00Q1"], "changed_by": None}
    body = json.dumps({"notices": [notice]}).encode()
    signed = signed_headers(SECRET, body)
    assert _call(f"{base}/webhooks/local", body, signed) == 200
    # The server's taker thread stores the notice and queues its sync beside the answer.
    deadline = time.monotonic() + 30
    while not queue.job_ids and time.monotonic() < deadline:
        time.sleep(0.02)
    [job_id] = queue.job_ids
    job = queue.fetch_job(job_id)
    assert job is not None and job.kwargs == {"object": "Lead", "ids": ["00Q1"]}
    assert _call(f"{base}/webhooks/local", body, signed) == 200  # a duplicate, acknowledged
    assert queue.count == 1
    assert _call(f"{base}/webhooks/local", body, {**signed, "X-Tasuki-Signature": "0" * 64}) == 401
    # The machine's Redis keeps no append-only file: the server said what that risks.
    assert _log_of(tmp_path).count("appendonly yes") == 1
    assert _call(f"{base}/webhooks/local", b"x" * (2 * 1024 * 1024), signed) == 413


@pytest.mark.parametrize(
    ("unset", "complaint"),
    [
        ("TASUKI_WEBHOOK_SECRET", "TASUKI_WEBHOOK_SECRET is not set"),
        ("TASUKI_REDIS_URL", "TASUKI_REDIS_URL is not set"),
    ],
)
def test_tasuki_serve_refuses_to_start_without_its_secret_or_redis(
    tmp_path: Path, redis_url: str, unset: str, complaint: str
) -> None:
    env = _env(tmp_path, redis_url, **{unset: ""})
    result = CliRunner().invoke(main, ["serve", "--port", str(_free_port())], env=env)
    assert result.exit_code == 2
    assert complaint in result.output
