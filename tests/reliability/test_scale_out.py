"""Scaling out: four real ``tasuki worker`` processes on one Redis process one burst exactly once.

The same org goes through the pipeline twice, as the crash tests drive it (signed notices to the
webhook app, burst workers until the queue is dry, the write-back's echoes delivered in turn):
once with one worker, once with four at the same time. Every checkpoint passage of every worker
is traced (``TASUKI_TEST_TRACE``), so the test sees each sync job that ran, in which process.

- each notice leads to exactly one sync of its records: no sync job runs twice, every record
  noticed in a round is synced in that round, and the records synced per round are the same
  multiset as with one worker;
- the handoffs, verdicts, KPI values and the CRM's records equal the single-worker run's, no CRM
  record is written more often, and nothing is left owed;
- the work really was shared: more than one worker process ran sync jobs.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tasuki.mapping import Mapper
from tasuki.testhooks import TRACE
from tests.reliability.crash_support import EndState, Pipeline

WORKERS = 4
ROUNDS = 3
"""Notice rounds, as :meth:`Pipeline.run` drives them: the burst, then the write-back's echoes."""


@dataclass
class Round:
    """One round: the records noticed, and the sync jobs that ran after their delivery."""

    noticed: set[tuple[str, str]]
    syncs: list[dict[str, Any]]

    @property
    def records_synced(self) -> Counter[tuple[str, str]]:
        """How often each (object, record) was synced."""
        return Counter(
            (s["kwargs"]["object"], rid) for s in self.syncs for rid in s["kwargs"]["ids"]
        )


@dataclass
class Run:
    """What one run left and what its workers did."""

    end: EndState
    rounds: list[Round]
    trace: list[dict[str, Any]]


def _trace(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _run(folder: Path, redis_url: str, workers: int) -> Run:
    # The shipped recovery settings: a job running on another worker is never taken for lost.
    pipeline = Pipeline(folder, redis_url, instant_recovery=False)
    trace = folder / "trace.jsonl"
    pipeline.env[TRACE] = str(trace)
    mapper = Mapper(pipeline.settings.config)
    # tasuki's own KPI rows come back as notices too; they are written, never synced.
    unsynced = {mapper.physical_object(o) for o in pipeline.settings.config.write_only_objects}
    try:
        rounds = []
        for _ in range(ROUNDS):
            pending = pipeline.crm.pending_notices(1_000_000)
            noticed = {(o, r) for _, o, r, _ in pending if o not in unsynced}
            if not pipeline.deliver():
                break
            before = len(_trace(trace))
            pipeline.work_concurrently(workers)
            ran = _trace(trace)[before:]
            rounds.append(Round(noticed, [t for t in ran if t["point"] == "sync.committed"]))
        pipeline.work_concurrently(workers)  # the recovery pass each start queues, as run() ends
        return Run(pipeline.end_state(), rounds, _trace(trace))
    finally:
        pipeline.close()


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, redis_url_module: str) -> Run:
    return _run(tmp_path_factory.mktemp("one-worker"), redis_url_module, 1)


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory, redis_url_module: str) -> Run:
    return _run(tmp_path_factory.mktemp("four-workers"), redis_url_module, WORKERS)


def test_each_notice_is_synced_exactly_once_by_four_workers(single: Run, four: Run) -> None:
    assert len(four.rounds) == len(single.rounds) >= 2  # the burst and its echoes
    for n, (one, many) in enumerate(zip(single.rounds, four.rounds, strict=True)):
        jobs = Counter(s["job"] for s in many.syncs)
        assert {j: c for j, c in jobs.items() if c > 1} == {}, f"round {n}: a sync job ran twice"
        assert set(many.records_synced) == many.noticed, f"round {n}: noticed ≠ synced"
        assert many.records_synced == one.records_synced, f"round {n}: differs from one worker"
    pids = {t["pid"] for t in four.trace if t["point"] == "sync.committed"}
    assert len(pids) > 1, "one process did every sync: the work was not shared"


def test_four_workers_end_where_one_does_and_write_nothing_more(single: Run, four: Run) -> None:
    one, many = single.end, four.end
    assert one.handoffs and one.verdicts and one.kpis and one.writes
    assert many.handoffs == one.handoffs
    assert many.verdicts == one.verdicts
    assert many.kpis == one.kpis
    assert many.crm == one.crm
    more = {
        k: (n, one.writes.get(k, 0)) for k, n in many.writes.items() if n > one.writes.get(k, 0)
    }
    assert more == {}, "records written more often by four workers than by one"
    assert many.owed == {} and many.intents == 0
