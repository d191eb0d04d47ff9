"""Webhook intake: notices/s and p99 of tasuki's ``/webhooks/local`` against a bare receiver.

The baseline is a Flask app doing only what any receiver must: read the body, verify the HMAC
(the same timestamped scheme as ``/webhooks/local``), parse the JSON and ``LPUSH`` it to
Redis. tasuki is ``tasuki serve`` itself. Both run under waitress with the same threads, against
their own ``redis-server`` on a free port, and take the same load: ``--clients`` keep-alive
clients sending ``--requests`` signed requests of one notice each (after a warm-up). tasuki runs
on a fresh SQLite file and on a fresh PostgreSQL database.

tasuki answers from Redis alone (one script per request) and its taker, a process that
``tasuki serve`` starts beside it, stores the accepted notices meanwhile on the same machine;
the bench prints how long after the last answer every notice was in the store. Then it checks
that nothing was lost or doubled: every request answered 200 as accepted, each notice's
delivery id recorded once in the store, each notice's record owed one sync and queued in
exactly one job; then it sends every request again (signed anew) and checks that each is
answered as a duplicate and nothing more is queued.

    .venv/bin/python bench/intake.py [--requests 3000] [--clients 16] [--threads 8]
                                     [--backends sqlite postgresql]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response

_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
ROOT = os.path.dirname(_here)
sys.path.insert(0, ROOT)

SECRET = "bench-secret-" + "x" * 20
POSTGRES_URL = os.environ.get(
    "TASUKI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BASELINE_KEY = "bench:notices"
WARM_UP = 200


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server of the bench's own on a free port (no persistence); its URL."""
    import redis

    port = free_port()
    proc = subprocess.Popen(
        [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--dir", str(folder)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.RedisError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped on leaving; its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"tasuki_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- the baseline receiver ------------------------------------------------------------------


def baseline_app(redis_url: str) -> Flask:
    """Read the body, verify the HMAC, parse the JSON, LPUSH it: nothing more."""
    import hashlib
    import hmac

    import redis
    from flask import jsonify, request

    app = Flask("baseline")
    conn = redis.Redis.from_url(redis_url)
    key = SECRET.encode()

    @app.post("/webhooks/local")
    def receive() -> tuple[Response, int]:
        body = request.get_data(cache=False)
        stamp = request.headers.get("X-Tasuki-Timestamp", "")
        given = request.headers.get("X-Tasuki-Signature", "").encode()
        expected = hmac.new(key, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given, expected.encode()):
            return jsonify(error="bad signature"), 401
        data = json.loads(body)
        conn.lpush(BASELINE_KEY, json.dumps(data))
        return jsonify(accepted=len(data["notices"]), duplicates=0, ignored=0), 200

    return app


def serve_baseline(port: int, threads: int, redis_url: str) -> None:
    """Serve the baseline under waitress exactly as ``tasuki serve`` serves tasuki."""
    import waitress

    from webhooks.serve import SERVER_BODY_LIMIT

    waitress.serve(
        baseline_app(redis_url),
        host="127.0.0.1",
        port=port,
        threads=threads,
        ident="tasuki",
        max_request_body_size=SERVER_BODY_LIMIT,
    )


# --- the load -------------------------------------------------------------------------------


def bodies(prefix: str, n: int) -> list[bytes]:
    """``n`` request bodies of one notice each, every one a new delivery of a new record."""
    return [
        json.dumps(
            {
                "notices": [
                    {"id": f"{prefix}-{i}", "object": "Lead", "record_ids": [f"{prefix}L{i}"]}
                ]
            }
        ).encode()
        for i in range(n)
    ]


@dataclass
class Load:
    """What one load run measured."""

    seconds: float
    latencies: list[float]
    answers: list[dict[str, int]]
    statuses: list[int]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def load(port: int, payloads: Sequence[bytes], clients: int) -> Load:
    """Send ``payloads`` from ``clients`` keep-alive connections; each signed when sent."""
    from webhooks.local import signed_headers

    latencies = [0.0] * len(payloads)
    answers: list[dict[str, int]] = [{}] * len(payloads)
    statuses = [0] * len(payloads)
    lock = threading.Lock()
    cursor = iter(range(len(payloads)))

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                break
            body = payloads[i]
            headers = signed_headers(SECRET, body)
            started = time.perf_counter()
            conn.request("POST", "/webhooks/local", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            latencies[i] = time.perf_counter() - started
            statuses[i] = response.status
            if response.status == 200:
                answers[i] = json.loads(data)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Load(time.perf_counter() - started, latencies, answers, statuses)


@contextmanager
def server(args: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=out, cwd=ROOT)
        try:
            _wait_port(port, proc)
            yield
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --- the runs -------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    rate: float
    p99_ms: float
    checked: str
    store_lag: float = 0.0
    """Seconds from the last answer until the server had every accepted notice in the store."""


def run_baseline(folder: Path, redis_url: str, n: int, clients: int, threads: int) -> Result:
    import redis

    redis.Redis.from_url(redis_url).delete(BASELINE_KEY)
    port = free_port()
    cmd = [sys.executable, __file__, "--serve-baseline", str(port), str(threads), redis_url]
    with server(cmd, dict(os.environ), port, folder / "baseline.log"):
        load(port, bodies("warm", WARM_UP), clients)
        got = load(port, bodies("b", n), clients)
    pushed = redis.Redis.from_url(redis_url).llen(BASELINE_KEY)
    ok = all(s == 200 for s in got.statuses) and pushed == n + WARM_UP
    return Result("baseline", got.rate, got.p99_ms, "ok" if ok else f"LOST: {pushed} pushed")


def tasuki_env(folder: Path, redis_url: str, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASUKI_")}
    env.update(
        TASUKI_DATA_DIR=str(folder),
        TASUKI_DATABASE_URL=database_url,
        TASUKI_REDIS_URL=redis_url,
        TASUKI_WEBHOOK_SECRET=SECRET,
        TASUKI_LOG_LEVEL="WARNING",
    )
    return env


def stored_after(redis_url: str, seconds: float = 120) -> float:
    """Seconds until the server's intake stream is empty: every accepted notice in the store
    and its sync queued (the server takes them beside its request threads)."""
    import redis

    conn = redis.Redis.from_url(redis_url)
    started = time.perf_counter()
    while conn.xlen("tasuki:intake:tasuki"):
        if time.perf_counter() - started > seconds:
            raise RuntimeError("the server never stored what it accepted")
        time.sleep(0.01)
    return time.perf_counter() - started


def check_tasuki(database_url: str, redis_url: str, prefix: str, got: Load, n: int) -> list[str]:
    """What was lost or doubled, if anything (an empty list when every notice is owed one sync,
    its delivery recorded once and its record queued in exactly one job)."""
    import redis
    from rq import Queue
    from sqlalchemy import func, select

    from tasuki.store.db import open_store
    from tasuki.store.models import Delivery, OwedWork

    problems = []
    bad = sum(1 for s, a in zip(got.statuses, got.answers, strict=True) if s != 200)
    if bad:
        problems.append(f"{bad} answers not 200")
    accepted = sum(a.get("accepted", 0) for a in got.answers)
    if accepted != n:
        problems.append(f"{accepted} of {n} accepted")
    store = open_store(database_url, migrate=False)
    with store.session() as s:
        deliveries = s.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.delivery_id.like(f"{prefix}-%"))
        )
        owed = s.scalar(
            select(func.count())
            .select_from(OwedWork)
            .where(OwedWork.kind == "sync", OwedWork.record_id.like(f"{prefix}L%"))
        )
    store.engine.dispose()
    if deliveries != n:
        problems.append(f"{deliveries} deliveries recorded for {n}")
    if owed != n:
        problems.append(f"{owed} records owed a sync for {n}")
    queue = Queue("tasuki", connection=redis.Redis.from_url(redis_url))
    queued: dict[str, int] = {}
    for job in queue.get_jobs():
        for rid in job.kwargs.get("ids", []):
            if rid.startswith(f"{prefix}L"):
                queued[rid] = queued.get(rid, 0) + 1
    if len(queued) != n or any(c != 1 for c in queued.values()):
        doubled = sum(1 for c in queued.values() if c > 1)
        problems.append(f"{len(queued)} records queued for {n}, {doubled} more than once")
    return problems


def run_tasuki(
    name: str, folder: Path, redis_url: str, database_url: str, n: int, clients: int, threads: int
) -> Result:
    port = free_port()
    env = tasuki_env(folder, redis_url, database_url)
    tasuki = str(Path(sys.executable).with_name("tasuki"))
    cmd = [tasuki, "serve", "--port", str(port), "--threads", str(threads)]
    with server(cmd, env, port, folder / f"{name}.log"):
        load(port, bodies(f"w{name}", WARM_UP), clients)
        payloads = bodies(name, n)
        got = load(port, payloads, clients)
        lag = stored_after(redis_url)
        again = load(port, payloads, clients)
        stored_after(redis_url)
    problems = check_tasuki(database_url, redis_url, name, got, n)
    duplicates = sum(a.get("duplicates", 0) for a in again.answers)
    if duplicates != n:
        problems.append(f"retries: {duplicates} of {n} answered as duplicates")
    return Result(name, got.rate, got.p99_ms, "; ".join(problems) or "ok", lag)


def _line(label: str, base: Result, mine: Result) -> str:
    return (
        f"{label:<15} baseline {base.rate:7,.0f}/s p99 {base.p99_ms:6.1f} ms | "
        f"tasuki {mine.rate:7,.0f}/s p99 {mine.p99_ms:6.1f} ms | "
        f"ratio {mine.rate / base.rate:.2f}x | in the store {1000 * mine.store_lag:,.0f} ms "
        f"after the last answer | {mine.checked}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--backends", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="baseline and tasuki alternated this many times; the best of each is compared "
        "(a shared machine's load comes and goes)",
    )
    parser.add_argument("--serve-baseline", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_baseline:
        port, threads, redis_url = args.serve_baseline
        serve_baseline(int(port), int(threads), redis_url)
        return 0
    n, clients, threads = args.requests, args.clients, args.threads
    print(f"{n:,} requests of one notice, {clients} keep-alive clients, waitress {threads} threads")
    failed = False
    with tempfile.TemporaryDirectory(prefix="tasuki-bench-intake-") as tmp:
        folder = Path(tmp)
        with redis_server(folder) as redis_url:
            for backend in args.backends:
                bases: list[Result] = []
                mines: list[Result] = []
                for r in range(args.rounds):
                    base = run_baseline(folder, redis_url, n, clients, threads)
                    name = f"{backend}{r}"
                    if backend == "sqlite":
                        url = f"sqlite:///{folder / f'store{r}.db'}"
                        mine = run_tasuki(name, folder, redis_url, url, n, clients, threads)
                    else:
                        with postgres_database() as url:
                            mine = run_tasuki(name, folder, redis_url, url, n, clients, threads)
                    print(_line(f"{backend} #{r + 1}", base, mine), flush=True)
                    failed |= mine.checked != "ok" or base.checked != "ok"
                    bases.append(base)
                    mines.append(mine)
                best_base = max(bases, key=lambda b: b.rate)
                best_mine = max(mines, key=lambda m: m.rate)
                print(_line(f"{backend} best", best_base, best_mine), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
