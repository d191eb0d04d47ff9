"""Core commands: ``demo``, ``worker``, ``scheduler``, ``db upgrade``, ``sync``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import worker
from tasuki import backfill, kpis, logs, startup
from tasuki.console.report import write_report
from tasuki.demo.agenda import show_next_agenda
from tasuki.demo.org import OrgSpec
from tasuki.demo.run import DemoOutcome, run_demo
from tasuki.display import local_time
from tasuki.kpis.periods import previous
from tasuki.notify.agenda import agenda_cron
from tasuki.overview import boundary_stats
from tasuki.preflight import DEMO, SCHEDULER, WORKER, checked_settings
from tasuki.queue import MONITORING_INTERVAL, connect, enqueue_once, job_queue
from tasuki.schedule import CompanyCronScheduler, Scheduler
from tasuki.settings import Settings, load_settings
from tasuki.store.db import make_engine, open_store, upgrade
from worker import RefreshingWorker


@click.command("demo")
@click.option("--seed", default=7, show_default=True, help="Random seed of the synthetic org.")
@click.option("--leads", default=400, show_default=True, help="Leads in the synthetic org.")
@click.option(
    "--until",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Last day of the org's activity (default: today).",
)
def demo_command(seed: int, leads: int, until: datetime | None) -> None:
    """Run the whole pipeline on the embedded CRM and a synthetic The Model org."""
    settings = checked_settings(DEMO)  # every file, every problem at once
    # Progress bars own the terminal: only warnings unless TASUKI_LOG_LEVEL asks for more.
    logs.setup(settings, "demo", default_level="WARNING")
    logs.started("demo", settings)
    day: date = until.date() if until else datetime.now(UTC).date()
    spec = OrgSpec(seed=seed, leads=leads, until=day)
    console = Console()
    with Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, object] = {}

        def progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done, total=max(total, done))  # type: ignore[arg-type]

        outcome = run_demo(settings, spec, progress)
    _show(console, settings, outcome)


def _show(console: Console, settings: Settings, outcome: object) -> None:
    assert isinstance(outcome, DemoOutcome)
    store = open_store(settings.database_url)
    config = settings.config
    with store.session() as s:
        stats = boundary_stats(s, "local", [b.id for b in config.boundaries])
    # The last closed period: the current one has barely started on the 1st of a month.
    kb = kpis.book(settings)
    current = kpis.current_period(settings, outcome.spec.until)
    period = previous(current, kb.period, kb.fiscal_year_start, kpis.company_tz(settings))
    people = kpis.person_summary(store, settings, period)

    what = "seeded" if outcome.seeded else f"run {outcome.run_number}, same org replayed"
    console.print(f"\n[bold]tasuki demo[/] ({outcome.spec.key}; {what})")
    console.print(
        f"{outcome.notices} change notices in {outcome.requests} signed webhook requests "
        f"({outcome.duplicates} duplicates) → {outcome.jobs} jobs"
    )

    t = Table(title="Handoffs by boundary")
    for col in ("boundary", "handoffs", "passed", "warned", "failed", "most common violations"):
        t.add_column(
            col, justify="right" if col in ("handoffs", "passed", "warned", "failed") else "left"
        )
    for b in stats:
        top = "\n".join(f"{msg} ×{n}" for _, msg, n in b.top_violations) or "–"
        t.add_row(b.boundary, str(b.handoffs), str(b.passed), str(b.warned), str(b.failed), top)
    console.print(t)

    t = Table(title=f"Own and neighbour KPIs, {period}")
    for col in (
        "person",
        "dept",
        "own KPI (actual / target)",
        "neighbour KPI (actual / target)",
        "attainment",
    ):
        t.add_column(col, justify="right" if col == "attainment" else "left")
    for p in people:
        t.add_row(
            p.name,
            p.department,
            "\n".join(f"{k.label}: {k.shown(k.value)} / {k.shown(k.target)}" for k in p.own),
            "\n".join(f"{k.label}: {k.shown(k.value)} / {k.shown(k.target)}" for k in p.neighbour),
            "–" if p.attainment is None else f"{100 * p.attainment:.0f}%",
        )
    console.print(t)

    w = outcome.writes
    t = Table(title="Written back to the CRM")
    t.add_column("figure")
    t.add_column("value", justify="right")
    writes = {
        "records written": w.records,
        "fields changed": w.fields,
        "write API calls made": w.calls,
        "minimum possible write calls": w.min_calls,
        "records rejected by the CRM": w.rejected,
        "read API calls": outcome.read_calls,
    }
    for k, v in writes.items():
        t.add_row(k, str(v))
    for obj, (records, fields) in w.by_object.items():
        t.add_row(f"  {obj}: records / fields", f"{records} / {fields}")
    console.print(t)
    if w.fields == 0:
        console.print("[green]Nothing changed: 0 fields changed, 0 write calls.[/]")

    report = settings.data_dir / "report.html"
    write_report(settings, report, period=period, store=store)
    handoffs = sum(x.handoffs for x in stats)
    console.print(
        f"Report: {report}\n"
        "Console: tasuki serve --demo (prints a one-time sign-in link)\n"
        f"Done in {outcome.seconds:.1f} s: webhooks, jobs, {handoffs} handoffs "
        f"judged and written back in {outcome.pipeline_seconds:.1f} s."
    )

    show_next_agenda(console, store, settings, outcome.spec.until)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker_command(burst: bool) -> None:
    """Run an RQ worker on TASUKI_REDIS_URL (refuses to start on a bad config or rules file)."""
    # Every file and what a worker needs from the environment, every problem at once, before
    # the store is opened or any job taken.
    rt = startup.install(checked_settings(WORKER))
    logs.setup(rt.settings, "worker")
    rt.validate()  # the rulebook, kept for the jobs
    logs.started("worker", rt.settings)
    queue = job_queue(rt.settings)
    # Whatever an earlier worker left owed (it was killed, Redis was restarted) is queued again
    # before this one takes work.
    enqueue_once(queue, "recover", worker.recover)
    RefreshingWorker(
        [queue], connection=queue.connection, job_monitoring_interval=MONITORING_INTERVAL
    ).work(burst=burst, with_scheduler=True)


@click.command("scheduler")
def scheduler_command() -> None:
    """Run the periodic jobs (reconcile, SLA sweep, KPIs, recovery) on their cron schedules.

    Survives Redis outages: it retries with backoff and, when Redis is back, queues a recovery
    pass at once (see tasuki.schedule)."""
    # Every file (a bad cron expression, a broken rules file) and Redis's URL, every problem at
    # once, before anything is scheduled. The scheduler itself needs neither store nor CRM.
    settings = checked_settings(SCHEDULER)
    logs.setup(settings, "scheduler")
    logs.started("scheduler", settings)
    s = settings.config.schedules
    connection = connect(settings)
    # Cron expressions read in the company's time zone, not the host's clock.
    zone = ZoneInfo(settings.config.calendar.timezone)
    cron = CompanyCronScheduler(connection, zone)  # logs through logs.setup's handler
    queue = settings.config.queue_name

    cron.register(worker.reconcile, queue, cron=s.reconcile)
    cron.register(worker.sla_sweep, queue, cron=s.reconcile)
    cron.register(worker.compute_kpis, queue, cron=s.kpis)
    cron.register(worker.recompute_closed_period, queue, cron=s.kpis_closed)
    cron.register(worker.prune_deliveries, queue, cron="30 3 * * *")
    cron.register(worker.recover, queue, cron=RECOVER_SCHEDULE)
    cron.register(worker.notify, queue, cron=s.notify)
    cron.register(worker.deliver_agenda, queue, cron=agenda_cron(settings))
    jobs = job_queue(settings, connection)
    Scheduler(cron, lambda: enqueue_once(jobs, "recover", worker.recover)).run()


RECOVER_SCHEDULE = "* * * * *"
"""How often owed work that no live job is doing is queued again (``worker.recover``)."""


@click.group("db")
def db_group() -> None:
    """The store's schema."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to TASUKI_DATABASE_URL and say which."""
    engine = make_engine(load_settings().database_url)
    try:
        done = upgrade(engine)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    if done.applied:
        click.echo(f"applied {', '.join(done.applied)}; store at {where} is at head {done.head}")
    else:
        click.echo(f"store at {where} already at head {done.head}")


@click.command("sync")
@click.option("--object", "only", default=None, help="Only this object (logical or CRM name).")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M"]),
    default=None,
    help="Read records changed since this day (company timezone), not from the cursor.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Estimate the read and write calls and the share of the daily API quota; read only "
    "counts, write nothing.",
)
@click.option(
    "--write-history",
    is_flag=True,
    help="Write the verdicts of historical handoffs (before the first back-fill, or --since) "
    "to the CRM too; by default they are kept in tasuki only.",
)
def sync_command(
    only: str | None, since: datetime | None, dry_run: bool, write_history: bool
) -> None:
    """Sync now: read what changed in the CRM (from each object's cursor, or --since), detect
    and judge handoffs, write back. The first run is the back-fill of the org's history."""
    rt = startup.current()
    tz = rt.calendar.tz
    start = since.replace(tzinfo=tz) if since else None
    objects = backfill.synced_objects(rt, only)
    plan = backfill.plan(rt, objects, since=start, write_history=write_history)
    console = Console(highlight=False)
    table = Table(title="Sync plan" + (" (dry run)" if dry_run else ""))
    for col in ("object", "from", "records", "read calls", "minimum"):
        table.add_column(col, justify="left" if col in ("object", "from") else "right")
    for o in plan.objects:
        e = o.estimate
        where = (
            f"since {local_time(start, tz)}"
            if start
            else ("the beginning (back-fill)" if o.backfill else "its cursor")
        )
        table.add_row(
            f"{o.logical} ({o.physical})",
            where,
            f"{e.records:,}",
            f"{e.calls:,} ({e.change_calls:,} pages + {e.history_calls:,} history)",
            f"{e.minimum:,} (pages of {e.page_size:,})",
        )
    console.print(table)
    console.print(
        f"Read calls: about {plan.read_calls:,} (users {backfill.USERS_READS}); "
        f"this estimate spent {plan.spent} count call(s)."
    )
    console.print(
        f"Write calls for verdicts: at most {plan.write_calls:,} "
        f"({plan.write_records:,} record(s), {plan.write_batch_size} a call); KPI figures as "
        "the regular write-back."
    )
    if plan.history_before is not None:
        how = "written to the CRM too" if write_history else "kept in tasuki, not written"
        console.print(
            f"Handoffs before {local_time(plan.history_before, tz)} are history: {how} "
            + ("" if write_history else "(--write-history writes them).")
        )
    share = plan.quota_share
    if plan.usage is not None and share is not None:
        used, limit = plan.usage
        console.print(
            f"Daily API allocation: {used:,} of {limit:,} used; this sync takes about "
            f"{100 * share:.1f}% of it."
        )
    else:
        console.print("Daily API allocation: none reported by this CRM.")
    if dry_run:
        console.print("Dry run: no record read, nothing stored, nothing written to the CRM.")
        return
    with Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        tasks = {
            o.logical: bar.add_task(f"Reading {o.logical}", total=max(1, o.estimate.records))
            for o in plan.objects
        }

        def progress(obj: str, done: int) -> None:
            bar.update(tasks[obj], completed=done)

        outcome = backfill.run(
            rt,
            plan,
            progress=progress,
            write_back=lambda history: worker.write_back(write_history=history),
        )
    w = outcome.write
    console.print(
        f"Read {outcome.records:,} record(s) in {outcome.read_calls:,} read call(s) (estimated "
        f"{plan.read_calls:,}); {outcome.handoffs:,} new handoff(s), "
        f"{outcome.verdicts_changed:,} verdict(s) changed."
    )
    console.print(
        f"Written back: {w.get('records', 0):,} record(s), {w.get('fields', 0):,} field(s) in "
        f"{w.get('calls', 0):,} call(s)."
    )


def register_core(main: click.Group) -> None:
    """Attach the core commands to ``main``."""
    for command in (demo_command, worker_command, scheduler_command, db_group, sync_command):
        main.add_command(command)
