"""``tasuki runs`` (what the jobs did, from the store) and ``tasuki jobs`` (RQ's failed jobs)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry

from tasuki.errors import TasukiError
from tasuki.logs import MASK, secret_values
from tasuki.ops.runs import detail, recent
from tasuki.queue import job_queue
from tasuki.settings import load_settings
from tasuki.store.db import open_store
from tasuki.store.models import JobRun

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, JSON for scripts.",
)


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "–"


def _figures(figures: Mapping[str, Any] | None) -> str:
    if not figures:
        return "–"
    return " ".join(f"{k}={v}" for k, v in figures.items() if k != "write_run" and v) or "nothing"


def _run_json(run: JobRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "job": run.func,
        "job_id": run.job_id,
        "queue": run.queue,
        "worker": run.worker,
        "status": run.status,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "seconds": run.seconds,
        "args": run.args,
        "figures": run.figures,
        "error": run.error or None,
    }


def _echo_json(value: object) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


@click.group("runs", invoke_without_command=True)
@click.option("--failed", is_flag=True, help="Only runs that ended in an error.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--job", "job", default=None, help="Only runs of this job (sync_records, …).")
@FORMAT
@click.pass_context
def runs_group(ctx: click.Context, failed: bool, limit: int, job: str | None, fmt: str) -> None:
    """Recent job runs (syncs, KPI computations, write-backs …): outcome, figures, duration.

    `tasuki runs show ID` shows one run record by record."""
    if ctx.invoked_subcommand is not None:
        return

    store = open_store(load_settings().database_url)
    rows = recent(store, limit=limit, failed=failed, job=job)
    if fmt == "json":
        _echo_json([_run_json(r) for r in rows])
        return
    table = Table(title="Job runs, newest first" + (" (failed only)" if failed else ""))
    for col in ("id", "job", "status", "started (UTC)", "seconds", "figures / error", "job id"):
        table.add_column(col, justify="right" if col in ("id", "seconds") else "left")
    for r in rows:
        table.add_row(
            str(r.id),
            r.func,
            r.status,
            _when(r.started_at),
            "–" if r.seconds is None else f"{r.seconds:.2f}",
            r.error if r.error else _figures(r.figures),
            r.job_id or "–",
        )
    Console(width=160).print(table)
    if not rows:
        click.echo("no runs recorded")


@runs_group.command("show")
@click.argument("run_id", type=int)
@FORMAT
def runs_show(run_id: int, fmt: str) -> None:
    """One run: its figures or error, the records it covered and, for a write-back, every
    record the CRM refused with the CRM's own code and message."""
    found = detail(open_store(load_settings().database_url), run_id)
    if found is None:
        raise TasukiError(f"no run {run_id}")
    run = found.run
    rejections: list[dict[str, Any]] = [
        {
            "object": r.object,
            "record_id": r.record_id,
            "error_code": r.error_code,
            "message": r.message,
            "values": r.values,
        }
        for r in found.rejections
    ]
    write_run = found.write_run
    writes = (
        {
            "records": write_run.records,
            "fields": write_run.fields,
            "calls": write_run.calls,
            "min_calls": write_run.min_calls,
            "rejected": write_run.rejected,
        }
        if write_run is not None
        else None
    )
    if fmt == "json":
        _echo_json({**_run_json(run), "write": writes, "rejections": rejections})
        return
    click.echo(f"run {run.id}: {run.func} {run.status}")
    click.echo(f"  job id   {run.job_id or '–'} on queue {run.queue or '–'} ({run.worker})")
    took = "–" if run.seconds is None else f"{run.seconds:.2f} s"
    click.echo(f"  started  {_when(run.started_at)} UTC, ended {_when(run.ended_at)}, {took}")
    if run.error:
        click.echo(f"  error    {run.error}")
    if run.figures:
        click.echo("  figures  " + " ".join(f"{k}={v}" for k, v in run.figures.items()))
    args = dict(run.args or {})
    ids = args.pop("ids", None)
    if args:
        click.echo("  args     " + " ".join(f"{k}={v}" for k, v in args.items()))
    if isinstance(ids, list):
        click.echo(f"  records  {len(ids)}: {', '.join(str(i) for i in ids)}")
    if writes is not None:
        click.echo("  written  " + " ".join(f"{k}={v}" for k, v in writes.items()))
    if rejections:
        table = Table(title="Records the CRM refused")
        for col in ("object", "record", "code", "message"):
            table.add_column(col)
        for rej in rejections:
            table.add_row(rej["object"], rej["record_id"], rej["error_code"], rej["message"])
        Console(width=160).print(table)


@click.group("jobs")
def jobs_group() -> None:
    """RQ's failed jobs on the configured queue (TASUKI_REDIS_URL)."""


def _failed_registry() -> tuple[Any, list[str]]:
    """RQ's failed registry of the configured queue, and the secret values to mask."""
    settings = load_settings()
    if settings.redis_url is None:
        raise click.UsageError("TASUKI_REDIS_URL is not set: failed jobs live in Redis")
    return FailedJobRegistry(queue=job_queue(settings)), secret_values(settings)


def _failed_json(registry: Any, ids: Sequence[str], secrets: list[str]) -> list[dict[str, Any]]:
    out = []
    for job in Job.fetch_many(list(ids), connection=registry.connection):
        if job is None:
            continue
        result = job.latest_result()
        text = (result.exc_string or "") if result else ""
        for value in secrets:
            text = text.replace(value, MASK)  # an error may quote what it was given
        error = text.strip().splitlines()
        out.append(
            {
                "id": job.id,
                "job": job.func_name,
                "description": job.description,
                "ended_at": job.ended_at.isoformat() if job.ended_at else None,
                "error": error[-1] if error else None,
            }
        )
    return out


@jobs_group.command("failed")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@FORMAT
def jobs_failed(limit: int, fmt: str) -> None:
    """Jobs that failed after their retries (kept a week), newest first."""
    registry, secrets = _failed_registry()
    ids = registry.get_job_ids(0, limit - 1, desc=True, cleanup=False)
    jobs = _failed_json(registry, ids, secrets)
    if fmt == "json":
        _echo_json(jobs)
        return
    table = Table(title=f"Failed jobs on {registry.name} ({registry.count} in all)")
    for col in ("job id", "job", "ended (UTC)", "error"):
        table.add_column(col)
    for j in jobs:
        table.add_row(j["id"], j["job"], (j["ended_at"] or "–")[:19], j["error"] or "–")
    Console(width=160).print(table)


@jobs_group.command("retry")
@click.argument("job_ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every failed job of the queue.")
def jobs_retry(job_ids: tuple[str, ...], every: bool) -> None:
    """Queue failed jobs again (by id, or --all); each runs as if new (jobs are idempotent)."""
    if bool(job_ids) == every:
        raise click.UsageError("give job ids or --all (not both)")
    registry, _ = _failed_registry()
    ids = list(registry.get_job_ids(cleanup=False)) if every else list(job_ids)
    done = 0
    for job_id in ids:
        try:
            registry.requeue(job_id)
            done += 1
        except (InvalidJobOperation, NoSuchJobError):
            click.echo(f"{job_id}: not in the failed registry", err=True)
    click.echo(f"requeued {done} job(s)")
    if done < len(ids):
        raise SystemExit(1)


def register_ops(main: click.Group) -> None:
    """Attach ``runs`` and ``jobs`` to ``main``."""
    main.add_command(runs_group)
    main.add_command(jobs_group)
