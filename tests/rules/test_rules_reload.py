"""Rule changes reach a running worker: a real ``tasuki worker`` process, started before the
rules file changed, judges the next change of a record with the new rule, and its verdict
records the new rule set's fingerprint."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from rq import Worker
from rq.registry import StartedJobRegistry
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from tasuki.settings import builtin_path, load_settings
from tasuki.startup import build
from tasuki.store.models import Handoff, Verdict
from tests.reliability.crash_support import TASUKI, Pipeline

TARGET_RULE = "mk-is.target-account"


def use_own_rules(pipeline: Pipeline) -> Path:
    """Point the pipeline's config at a copy of the default rules in its folder."""
    rules = pipeline.folder / "rules.yaml"
    rules.write_text(builtin_path("rules/default.yaml").read_text(encoding="utf-8"), "utf-8")
    config = Path(pipeline.env["TASUKI_CONFIG"])
    text = config.read_text(encoding="utf-8")
    assert "rules: [builtin:rules/default.yaml]" in text
    config.write_text(text.replace("builtin:rules/default.yaml", str(rules)), encoding="utf-8")
    pipeline.settings = load_settings(pipeline.env)
    return rules


def make_target_rule_an_error(rules: Path) -> None:
    """The target-account rule goes from warn to error: its handoffs fail instead of warning."""
    text = rules.read_text(encoding="utf-8")
    head, rule, tail = text.partition(f"id: {TARGET_RULE}")
    assert rule
    tail = tail.replace("severity: warn", "severity: error", 1)
    rules.write_text(head + rule + tail, encoding="utf-8")


def wait_idle(pipeline: Pipeline, worker: subprocess.Popen[bytes]) -> None:
    """Until the worker listens, the queue is empty and no job runs (the worker stays up)."""
    started = StartedJobRegistry(queue=pipeline.queue)
    deadline = time.monotonic() + 120
    quiet = 0
    while quiet < 3:
        assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
        assert time.monotonic() < deadline, "the worker did not finish its work"
        listening = Worker.count(queue=pipeline.queue)
        busy = not listening or pipeline.queue.count or started.count
        quiet = 0 if busy else quiet + 1
        time.sleep(0.2)


def target_warned(pipeline: Pipeline) -> list[Handoff]:
    """MK→IS handoffs warned by the target-account rule alone."""
    with pipeline.store.session() as s:
        rows = s.scalars(
            select(Handoff)
            .where(Handoff.boundary == "MK→IS")
            .options(selectinload(Handoff.verdict).selectinload(Verdict.violations))
        ).all()
        s.expunge_all()
    return [
        h
        for h in rows
        if h.verdict is not None
        and h.verdict.outcome == "warned"
        and TARGET_RULE in {v.rule_id for v in h.verdict.violations}
    ]


def test_a_running_worker_judges_with_the_changed_rule(tmp_path: Path, redis_url: str) -> None:
    pipeline = Pipeline(tmp_path, redis_url)
    worker: subprocess.Popen[bytes] | None = None
    try:
        rules = use_own_rules(pipeline)
        pipeline.run()
        before = build(pipeline.settings).rules_fingerprint
        warned = target_warned(pipeline)
        assert warned, "the demo org has no handoff warned only for its account"
        assert {h.verdict.fingerprint for h in warned if h.verdict} == {before}

        worker = subprocess.Popen(
            [TASUKI, "worker"],
            env={**os.environ, **pipeline.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        wait_idle(pipeline, worker)  # up, its start-up recovery pass done
        make_target_rule_an_error(rules)
        after = build(load_settings(pipeline.env)).rules_fingerprint
        assert after != before

        chosen = warned[0]
        lead = pipeline.crm.get("Lead", chosen.record_id)
        assert lead is not None
        pipeline.crm.upsert(
            "Lead",
            chosen.record_id,
            {"LeadSource": f"{lead.get('LeadSource')} (corrected)"},  # no rule reads it
            at=datetime.now(UTC),
            by="someone",
        )
        assert pipeline.deliver()
        wait_idle(pipeline, worker)
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.communicate(timeout=60)
        pipeline.close()

    with pipeline.store.session() as s:
        verdict = s.scalars(select(Verdict).join(Handoff).where(Handoff.id == chosen.id)).one()
        assert verdict.outcome == "failed"
        assert TARGET_RULE in {v.rule_id for v in verdict.violations}
        assert verdict.fingerprint == after
    # The others were not touched: they keep the rule set that judged them.
    untouched = [h for h in target_warned(pipeline) if h.id != chosen.id]
    assert untouched and {h.verdict.fingerprint for h in untouched if h.verdict} == {before}
