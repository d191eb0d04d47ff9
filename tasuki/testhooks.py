"""Named points where a test can stop a real process, to prove what a crash there leaves behind.

Product code calls :func:`checkpoint` right after each commit that matters (a sync's snapshots,
a judging transaction, a write-back batch). Normally it does nothing. When the environment
variable ``TASUKI_TEST_PAUSE_AT`` names the point (``sync.committed``, or ``sync.committed#2``
for its second passage in one process), the process writes its pid to
``$TASUKI_TEST_PAUSE_DIR/<point>`` and waits there for a signal, so the test can ``SIGKILL`` it
at exactly that moment. No timing, no sleep: the test waits for the file, the process waits
for the kill.

When ``TASUKI_TEST_TRACE`` names a file, every passage of every point is appended to it as one
JSON line (point, RQ job id and arguments, pid), so a test can count what ran, and where,
across several worker processes.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path

from rq import get_current_job

PAUSE_AT = "TASUKI_TEST_PAUSE_AT"
"""Environment variable naming the checkpoint to stop at (unset in production)."""
PAUSE_DIR = "TASUKI_TEST_PAUSE_DIR"
"""Environment variable naming the folder where a stopped process announces itself."""

TRACE = "TASUKI_TEST_TRACE"
"""Environment variable naming the file checkpoint passages are appended to (unset in
production)."""

_passages: Counter[str] = Counter()


def _trace(path: str, name: str) -> None:
    job = get_current_job()
    line = {
        "point": name,
        "job": None if job is None else job.id,
        "kwargs": None if job is None else job.kwargs,
        "pid": os.getpid(),
    }
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(line, default=str) + "\n").encode())  # one write: whole lines
    finally:
        os.close(fd)


def checkpoint(name: str) -> None:
    """Stop here, forever, when a test asked for this point; otherwise return at once."""
    trace = os.environ.get(TRACE)
    if trace:
        _trace(trace, name)
    wanted = os.environ.get(PAUSE_AT)
    if not wanted:
        return
    _passages[name] += 1
    point, _, nth = wanted.partition("#")
    if point != name or _passages[name] != int(nth or 1):
        return
    folder = Path(os.environ.get(PAUSE_DIR, "."))
    announce = folder / f"{name}.tmp"
    announce.write_text(str(os.getpid()))
    announce.rename(folder / name)  # the test sees the whole file or none
    while True:
        signal.pause()
