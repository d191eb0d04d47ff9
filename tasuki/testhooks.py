"""Named points where a test can stop a real process, to prove what a crash there leaves behind.

Product code calls :func:`checkpoint` right after each commit that matters (a sync's snapshots,
a judging transaction, a write-back batch). Normally it does nothing. When the environment
variable ``TASUKI_TEST_PAUSE_AT`` names the point (``sync.committed``, or ``sync.committed#2``
for its second passage in one process), the process writes its pid to
``$TASUKI_TEST_PAUSE_DIR/<point>`` and waits there for a signal, so the test can ``SIGKILL`` it
at exactly that moment. No timing, no sleep: the test waits for the file, the process waits
for the kill.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

PAUSE_AT = "TASUKI_TEST_PAUSE_AT"
"""Environment variable naming the checkpoint to stop at (unset in production)."""
PAUSE_DIR = "TASUKI_TEST_PAUSE_DIR"
"""Environment variable naming the folder where a stopped process announces itself."""

_passages: Counter[str] = Counter()


def checkpoint(name: str) -> None:
    """Stop here, forever, when a test asked for this point; otherwise return at once."""
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
