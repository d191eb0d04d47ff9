"""``tasuki up``: serve, N workers and the scheduler as one supervised process group.

For a small company on one host, one command (one systemd unit, one container) runs the whole
deployment. Each part is a child process of the same entry point (``python -m tasuki serve``,
``… worker``, ``… scheduler``), so it behaves exactly as it does when run on its own.

- **Restarts.** A child that exits while ``up`` is running is started again after a backoff
  (:data:`BACKOFF_MIN_SECONDS`, doubling to :data:`BACKOFF_MAX_SECONDS`; back to the minimum
  once it has run for :data:`STABLE_AFTER_SECONDS`). Every exit and restart is logged.
- **Graceful shutdown.** On SIGTERM or SIGINT every child gets SIGTERM, and only the child
  (its work horse has a process group of its own): an RQ worker finishes the job in flight and
  stops (RQ's warm shutdown), the scheduler stops between ticks, serve stops at once (whatever
  it answered 200 to is already owed in the store). What still runs after ``--stop-timeout``
  seconds is SIGKILLed with everything below it, work horses included; the job it was doing
  stays owed in the store and is done after the next start (``worker.recover``). ``up`` then
  exits 0. A second SIGTERM or SIGINT skips the wait.
- **Refuses to start** (exit 2, every problem printed) on what would make a child refuse: a
  broken tasuki.yaml, rules or KPI file, no ``TASUKI_WEBHOOK_SECRET`` or ``TASUKI_REDIS_URL``.

Children get their own process group, so a Ctrl+C in a terminal reaches ``up`` alone, which then
stops them in order. The loop waits on a self-pipe that signal handlers write to
(:func:`signal.set_wakeup_fd`): a child's death (SIGCHLD), a stop request or the next restart
due, whichever comes first; nothing polls.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from tasuki import logs
from tasuki.preflight import UP, checked_settings

if TYPE_CHECKING:
    from tasuki.settings import Settings

log = logging.getLogger(__name__)

BACKOFF_MIN_SECONDS = 1.0
"""Wait before restarting a child that died: the first time, and after it ran stably."""

BACKOFF_MAX_SECONDS = 30.0
"""Longest wait before restarting a child that keeps dying (the wait doubles up to this)."""

STABLE_AFTER_SECONDS = 60.0
"""A child that ran this long before dying is restarted after the minimum wait again."""

STOP_TIMEOUT_SECONDS = 60.0
"""Default of ``--stop-timeout``: how long a worker may take to finish its job in flight
after SIGTERM before it is killed (its work then stays owed in the store)."""

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass
class Child:
    """One supervised part: its name, its command line and its current process."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff: float = BACKOFF_MIN_SECONDS
    restart_at: float | None = None
    restarts: int = 0

    @property
    def running(self) -> bool:
        """True while its process has been started and not yet reaped."""
        return self.process is not None and self.process.returncode is None


def tasuki_argv(*args: str) -> list[str]:
    """The command line running ``tasuki ARGS`` with this very interpreter."""
    return [sys.executable, "-m", "tasuki", *args]


def children(workers: int, host: str, port: int, threads: int) -> list[Child]:
    """serve, ``workers`` workers and one scheduler, in the order they are started."""
    serve = ["serve", "--host", host, "--port", str(port), "--threads", str(threads)]
    parts = [Child("serve", tasuki_argv(*serve))]
    parts += [Child(f"worker.{i}", tasuki_argv("worker")) for i in range(1, workers + 1)]
    parts.append(Child("scheduler", tasuki_argv("scheduler")))
    return parts


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, children first (read from Linux's /proc; elsewhere none).

    RQ forks each job's work horse into a process group of its own, so a worker's process
    group does not cover it: the kill after the stop timeout walks the process tree instead."""
    proc = Path("/proc")
    below: dict[int, list[int]] = {}
    try:
        entries = [e for e in proc.iterdir() if e.name.isdigit()]
    except OSError:
        return []
    for entry in entries:
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        # "pid (comm) state ppid …": comm may hold spaces and parentheses.
        ppid = int(stat.rpartition(")")[2].split()[1])
        below.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in below.get(todo.pop(0), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Supervisor:
    """Runs :class:`Child` processes until told to stop; see the module docstring."""

    parts: Sequence[Child]
    stop_timeout: float = STOP_TIMEOUT_SECONDS
    _signals: list[int] = field(default_factory=list)
    _stopping: bool = False
    _forced: bool = False

    # -- signals -------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Runs between two bytecodes of the main thread: only note it; the loop acts on it.
        self._signals.append(signum)

    def _install(self) -> tuple[int, int, dict[int, object]]:
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        previous: dict[int, object] = {
            s: signal.signal(s, self._on_signal) for s in (*_STOP_SIGNALS, signal.SIGCHLD)
        }
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        return read, write, previous

    @staticmethod
    def _uninstall(read: int, write: int, previous: dict[int, object]) -> None:
        signal.set_wakeup_fd(-1)
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        os.close(read)
        os.close(write)

    def _wait(self, wakeup: int, seconds: float | None) -> None:
        """Until a signal arrives or ``seconds`` pass (``None``: until a signal)."""
        if seconds is None or seconds > 0:
            select.select([wakeup], [], [], seconds)
        try:
            while os.read(wakeup, 512):
                pass
        except BlockingIOError:
            pass

    def _take_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if signum not in _STOP_SIGNALS:
                continue
            if self._stopping:
                log.warning("up: %s again, killing what still runs", signal.Signals(signum).name)
                self._forced = True
            else:
                log.info("up: %s, stopping every part", signal.Signals(signum).name)
                self._stopping = True

    # -- children ------------------------------------------------------------------------------

    def _start(self, child: Child) -> None:
        child.restart_at = None
        try:
            child.process = subprocess.Popen(child.argv, process_group=0)
        except OSError as exc:
            log.error("up: cannot start %s: %s", child.name, exc)
            self._schedule_restart(child, time.monotonic())
            return
        child.started_at = time.monotonic()
        log.info("up: started %s (pid %d)", child.name, child.process.pid)

    def _schedule_restart(self, child: Child, now: float) -> None:
        if now - child.started_at >= STABLE_AFTER_SECONDS:
            child.backoff = BACKOFF_MIN_SECONDS
        child.restart_at = now + child.backoff
        child.restarts += 1
        log.warning(
            "up: restarting %s in %.0f s (restart %d)", child.name, child.backoff, child.restarts
        )
        child.backoff = min(child.backoff * 2, BACKOFF_MAX_SECONDS)

    def _reap(self) -> None:
        """Notice children that ended; while running, schedule their restart."""
        now = time.monotonic()
        for child in self.parts:
            if child.process is None or child.process.returncode is not None:
                continue
            pid = child.process.pid
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
                continue
            # Ended, not yet reaped, so its pid (and group id) cannot be anyone else's yet:
            # whatever it left in its process group goes too (a worker's RQ scheduler process).
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            code = child.process.wait()
            if self._stopping:
                log.info("up: %s stopped (%s)", child.name, _exit_text(code))
            else:
                log.warning("up: %s ended unexpectedly (%s)", child.name, _exit_text(code))
                self._schedule_restart(child, now)

    def _restart_due(self) -> float | None:
        """Start the children whose backoff has passed; seconds until the next one is due."""
        now = time.monotonic()
        for child in self.parts:
            if child.restart_at is not None and child.restart_at <= now:
                self._start(child)
        waits = [c.restart_at - now for c in self.parts if c.restart_at is not None]
        return max(0.0, min(waits)) if waits else None

    def _kill_tree(self, child: Child) -> None:
        assert child.process is not None
        pid = child.process.pid
        below = descendants(pid)  # read before the kill: orphans are no longer below it
        log.warning(
            "up: %s still running, killing it and the %d process(es) below it",
            child.name,
            len(below),
        )
        for target in [pid, *below]:
            try:
                os.kill(target, signal.SIGKILL)
            except ProcessLookupError:
                pass
        code = child.process.wait()
        log.info("up: %s stopped (%s)", child.name, _exit_text(code))

    def _shutdown(self, wakeup: int) -> None:
        for child in self.parts:
            child.restart_at = None
            if child.running:
                assert child.process is not None
                # Not Popen.send_signal: it may reap the child, and _reap wants it unreaped.
                os.kill(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while any(c.running for c in self.parts) and not self._forced:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._wait(wakeup, left)
            self._take_signals()
            self._reap()
        for child in self.parts:
            if child.running:
                self._kill_tree(child)

    def run(self) -> int:
        """Start every part, keep them running until SIGTERM/SIGINT, stop them; returns 0."""
        read, write, previous = self._install()
        try:
            for child in self.parts:
                self._start(child)
            while True:
                self._take_signals()
                if self._stopping:
                    break
                self._reap()
                next_due = self._restart_due()
                self._wait(read, next_due)
            self._shutdown(read)
        finally:
            self._uninstall(read, write, previous)
        log.info("up: every part stopped")
        return 0


def check_startable() -> Settings:
    """The settings, once nothing would make a child refuse to start: every file and what
    serve, the workers and the scheduler need from the environment (the webhook secret,
    ``TASUKI_REDIS_URL``, the CRM's sign-in) checked in one pass (:mod:`tasuki.preflight`);
    else one :class:`~tasuki.errors.ConfigError` with every problem."""
    return checked_settings(UP)


@click.command("up")
@click.option(
    "--workers", default=2, show_default=True, type=click.IntRange(min=1), help="RQ workers."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address serve binds.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--stop-timeout",
    default=STOP_TIMEOUT_SECONDS,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds the parts get to stop after SIGTERM before they are killed.",
)
def up_command(workers: int, host: str, port: int, threads: int, stop_timeout: float) -> None:
    """Run serve, N workers and the scheduler as one supervised group (one host).

    Restarts a part that dies; on SIGTERM or SIGINT lets workers finish their job in flight,
    then exits 0. Refuses to start on a bad configuration or without TASUKI_REDIS_URL."""
    settings = check_startable()
    logs.setup(settings, "up")
    logs.started("up", settings, address=f"http://{host}:{port}")
    log.info("up: serve, %d worker(s), the scheduler; stop timeout %.0f s", workers, stop_timeout)
    supervisor = Supervisor(children(workers, host, port, threads), stop_timeout)
    sys.exit(supervisor.run())
