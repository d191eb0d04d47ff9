"""``tasuki sync``: a sync now, from each object's cursor or from a date, with a preview.

:func:`plan` says before reading what the sync will cost: per object the records changed since
its cursor (or ``--since``), the read calls (pages of the incremental read and field-history
reads, each connector's :meth:`~tasuki.crm.EstimatesReads.estimate_reads`), the most write
calls the verdicts can take, and their share of the CRM's daily API allocation. Making the plan
costs a count per object (and per field history) and no write.

:func:`run` reads page by page (the same :func:`tasuki.sync.reconcile` the scheduler runs),
detects and judges what changed, and writes back in full batches. The first back-fill of an
object (no cursor yet) marks what came before as history (:mod:`tasuki.facts`): its verdicts are
kept and not written to the CRM unless ``write_history``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from tasuki.crm import EstimatesReads, ReadEstimate, ReadsSince
from tasuki.errors import TasukiError
from tasuki.facts import history_before, keep_history_before
from tasuki.judging import judge_owed
from tasuki.mapping import Mapper
from tasuki.runtime import Runtime
from tasuki.store.models import SyncCursor, utcnow
from tasuki.store.upsert import upsert
from tasuki.sync import SyncResult, reconcile, sync_people

USERS_READS = 1
"""Read calls for the CRM's users before the records (one page holds every owner of most orgs)."""


@dataclass(frozen=True)
class ObjectPlan:
    """One object's part of a sync: where it starts and what reading it will cost."""

    logical: str
    physical: str
    cursor: str | None
    estimate: ReadEstimate
    judged: bool
    """Handoffs happen on this object: its records may get verdict fields written."""

    @property
    def backfill(self) -> bool:
        """Read from the beginning: the object's first back-fill."""
        return self.cursor is None


@dataclass(frozen=True)
class SyncPlan:
    """What a sync will cost, said before any record is read."""

    objects: list[ObjectPlan]
    since: datetime | None
    write_history: bool
    history_before: datetime | None
    """Handoffs before this are history: the one in force, or the one this sync would set."""
    write_batch_size: int
    usage: tuple[int, int] | None
    """(API calls used today, daily allocation) as the CRM last reported them."""

    @property
    def read_calls(self) -> int:
        """Every read call the sync will make, the users' included."""
        return USERS_READS + sum(o.estimate.calls for o in self.objects)

    @property
    def spent(self) -> int:
        """Calls the estimate itself made."""
        return sum(o.estimate.spent for o in self.objects)

    @property
    def write_records(self) -> int:
        """The most records whose verdict fields the sync can write."""
        if self.history_before is not None and not self.write_history:
            # Everything a back-fill reads was handed over before it ran: history.
            return sum(o.estimate.records for o in self.objects if o.judged and not o.backfill)
        return sum(o.estimate.records for o in self.objects if o.judged)

    @property
    def write_calls(self) -> int:
        """The most write calls for those verdicts (full batches; KPI figures as usual)."""
        return -(-self.write_records // self.write_batch_size)

    @property
    def quota_share(self) -> float | None:
        """The share of the daily allocation the sync's calls take."""
        if self.usage is None or not self.usage[1]:
            return None
        return (self.read_calls + self.write_calls) / self.usage[1]


@dataclass
class SyncOutcome:
    """What a sync did."""

    results: list[SyncResult] = field(default_factory=list)
    handoffs: int = 0
    verdicts_changed: int = 0
    read_calls: int = 0
    write: dict[str, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return sum(r.records for r in self.results)


def since_cursor(rt: Runtime, since: datetime) -> str:
    """The cursor of the CRM's incremental read that starts at ``since``."""
    if isinstance(rt.connector, ReadsSince):
        return rt.connector.cursor_since(since)
    raise TasukiError(
        f"--since needs a CRM whose changes can be read from a date (Salesforce, HubSpot); "
        f"the {rt.system} CRM is read from its cursor"
    )


def _cursors(rt: Runtime) -> dict[str, str]:
    with rt.store.session() as session:
        return {
            c.object: c.cursor
            for c in session.scalars(select(SyncCursor).where(SyncCursor.system == rt.system))
        }


def synced_objects(rt: Runtime, only: str | None = None) -> list[str]:
    """The logical objects a sync reads (``only``: that one, by logical or CRM name)."""
    mapper = Mapper(rt.settings.config)
    objects = [o for o in mapper.objects if o != "user"]
    if only is None:
        return objects
    wanted = mapper.logical_object(only) or only
    if wanted not in objects:
        raise TasukiError(f"unknown object {only!r}; synced objects: {', '.join(objects)}")
    return [wanted]


def plan(
    rt: Runtime,
    objects: Sequence[str],
    *,
    since: datetime | None = None,
    write_history: bool = False,
) -> SyncPlan:
    """What syncing ``objects`` now will cost; reads counts only, writes nothing."""
    connector = rt.connector
    if not isinstance(connector, EstimatesReads):
        raise TasukiError(f"the {rt.system} connector cannot estimate a sync")
    mapper = Mapper(rt.settings.config)
    cursors = _cursors(rt)
    judged = {b.object for b in rt.settings.config.boundaries}
    out = []
    for logical in objects:
        physical = mapper.physical_object(logical)
        cursor = since_cursor(rt, since) if since else cursors.get(physical)
        history = [mapper.physical_field(logical, f) for f in mapper.tracked_fields(logical)]
        estimate = connector.estimate_reads(physical, cursor, history)
        backfill = physical not in cursors
        out.append(
            ObjectPlan(logical, physical, None if backfill else cursor, estimate, logical in judged)
        )
    with rt.store.session() as session:
        horizon = history_before(session)
    if horizon is None and any(o.backfill for o in out):
        horizon = since or utcnow()
    usage_of = getattr(connector, "api_usage", None)
    usage = usage_of() if callable(usage_of) else None
    return SyncPlan(out, since, write_history, horizon, connector.write_batch_size, usage)


def run(
    rt: Runtime,
    sync: SyncPlan,
    *,
    progress: Callable[[str, int], None] | None = None,
    write_back: Callable[[bool], dict[str, int]] | None = None,
) -> SyncOutcome:
    """Sync the planned objects page by page, judge what changed, then ``write_back`` (given
    whether to write history); ``progress`` hears (object, records read so far)."""
    outcome = SyncOutcome()
    before = rt.connector.calls["read"]
    sync_people(rt)
    with rt.store.session() as session:
        if sync.history_before is not None and any(o.backfill for o in sync.objects):
            keep_history_before(session, sync.history_before)
        if sync.since is not None:
            for o in sync.objects:
                upsert(
                    session,
                    SyncCursor,
                    [
                        {
                            "system": rt.system,
                            "object": o.physical,
                            "cursor": since_cursor(rt, sync.since),
                            "updated_at": utcnow(),
                        }
                    ],
                    ["system", "object"],
                    ["cursor", "updated_at"],
                )
    for o in sync.objects:
        read = [0]

        def page_done(result: SyncResult, name: str = o.logical, read: list[int] = read) -> None:
            read[0] += result.records
            if progress:
                progress(name, read[0])

        outcome.results.extend(reconcile(rt, o.logical, page_done))
    judged = judge_owed(rt)
    outcome.handoffs, outcome.verdicts_changed = judged.handoffs, judged.verdicts_changed
    outcome.read_calls = rt.connector.calls["read"] - before
    if write_back is not None:
        outcome.write = write_back(sync.write_history)
    return outcome
