"""The store's tables: what tasuki knows, derived from the CRMs, and what it wrote back.

Every table is keyed so that running a job twice cannot add a second row (the idempotency of
jobs rests on these unique constraints).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite keeps no zone: store naive UTC, read aware)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Record(Base):
    """The latest synced snapshot of one CRM record, in logical field names."""

    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("system", "object", "record_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20))
    object: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(64))
    fields: Mapped[dict[str, Any]]
    modstamp: Mapped[str] = mapped_column(String(40), default="")
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class Person(Base):
    """A CRM user with the department tasuki resolved for them."""

    __tablename__ = "people"
    __table_args__ = (UniqueConstraint("system", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    department: Mapped[str | None] = mapped_column(String(4), nullable=True)
    team: Mapped[str | None] = mapped_column(String(80), nullable=True)
    """A team within the department (KPIs roll up per team); ``None`` when the CRM has none."""


class Membership(Base):
    """A person's department and team over ``[valid_from, valid_to)`` (see
    :mod:`tasuki.membership`): observed by people syncs, or written by the admin in the people
    file (``source`` ``observed`` or ``file``; the file wins for the instants it covers).
    ``valid_to`` None: still held; ``valid_from`` 1900-01-01: since the beginning of time."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("system", "user_id", "source", "valid_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(4), nullable=True)
    team: Mapped[str | None] = mapped_column(String(80), nullable=True)
    valid_from: Mapped[datetime]
    valid_to: Mapped[datetime | None] = mapped_column(nullable=True)
    source: Mapped[str] = mapped_column(String(10))
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Transition(Base):
    """One change of a tracked field (owner, stage, status), from the CRM's field history."""

    __tablename__ = "transitions"
    __table_args__ = (
        UniqueConstraint("system", "source_id"),
        Index("ix_transitions_record", "system", "object", "record_id"),
        # Covers the KPIs' scan of a field's changes in a period (migration 0016).
        Index("ix_transitions_changes", "system", "object", "field", "at", "record_id", "id", "by"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20))
    object: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(80))
    old: Mapped[str | None] = mapped_column(Text, nullable=True)
    new: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime]
    by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source_id: Mapped[str] = mapped_column(String(120))


class Handoff(Base):
    """One record crossing a boundary: who sent it, who received it, when."""

    __tablename__ = "handoffs"
    __table_args__ = (
        UniqueConstraint("system", "boundary", "record_id", "handed_at"),
        Index("ix_handoffs_boundary_time", "boundary", "handed_at"),
        Index("ix_handoffs_record", "system", "object", "record_id"),
        # Covers the KPIs' scan of a boundary's crossings in a period (migration 0013).
        Index(
            "ix_handoffs_crossings",
            "system",
            "boundary",
            "handed_at",
            "record_id",
            "id",
            "sender_id",
            "receiver_id",
            "sender_department",
            "receiver_department",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20))
    boundary: Mapped[str] = mapped_column(String(10))
    object: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(64))
    sender_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    receiver_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sender_department: Mapped[str] = mapped_column(String(4))
    receiver_department: Mapped[str] = mapped_column(String(4))
    handed_at: Mapped[datetime]
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)

    verdict: Mapped[Verdict | None] = relationship(back_populates="handoff", uselist=False)


class Verdict(Base):
    """The latest result of checking a handoff against the rules."""

    __tablename__ = "verdicts"
    # A handoff's outcome from the index alone: pass rates and verdict conditions (0013).
    __table_args__ = (Index("ix_verdicts_outcome", "handoff_id", "outcome"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id"), unique=True)
    outcome: Mapped[str] = mapped_column(String(10))
    score: Mapped[int] = mapped_column(Integer)
    evaluated_at: Mapped[datetime] = mapped_column(default=utcnow)
    rules_digest: Mapped[str] = mapped_column(String(64), default="")
    """sha256 of the rules files when the verdict last changed."""
    fingerprint: Mapped[str] = mapped_column(String(64), default="", server_default="")
    """The rule set that last judged the handoff (:func:`tasuki.runtime.rules_fingerprint`),
    kept current when a re-judgment under changed rules gives the same verdict."""

    handoff: Mapped[Handoff] = relationship(back_populates="verdict")
    violations: Mapped[list[Violation]] = relationship(
        back_populates="verdict", cascade="all, delete-orphan", order_by="Violation.id"
    )


class StoreFact(Base):
    """One fact about this installation by key (``history_before``: see :mod:`tasuki.backfill`)."""

    __tablename__ = "store_facts"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Violation(Base):
    """One rule a handoff broke."""

    __tablename__ = "violations"

    id: Mapped[int] = mapped_column(primary_key=True)
    verdict_id: Mapped[int] = mapped_column(
        ForeignKey("verdicts.id", ondelete="CASCADE"), index=True
    )
    """Indexed: the console counts a boundary's violations from its handoffs' verdicts."""
    rule_id: Mapped[str] = mapped_column(String(120))
    severity: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)

    verdict: Mapped[Verdict] = relationship(back_populates="violations")


class KpiValue(Base):
    """One KPI figure for one subject (person, team, department, org) and period."""

    __tablename__ = "kpi_values"
    __table_args__ = (UniqueConstraint("system", "kpi_id", "subject_kind", "subject_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20))
    kpi_id: Mapped[str] = mapped_column(String(80))
    subject_kind: Mapped[str] = mapped_column(String(12))
    subject_id: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    numerator: Mapped[float | None] = mapped_column(Float, nullable=True)
    denominator: Mapped[float | None] = mapped_column(Float, nullable=True)
    target: Mapped[float | None] = mapped_column(Float, nullable=True)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerEntry(Base):
    """What tasuki last wrote to one CRM field, and the CRM accepted."""

    __tablename__ = "write_ledger"
    __table_args__ = (UniqueConstraint("system", "object", "record_id", "field"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20))
    object: Mapped[str] = mapped_column(String(80))
    record_id: Mapped[str] = mapped_column(String(255))
    field: Mapped[str] = mapped_column(String(120))
    value: Mapped[str | None] = mapped_column(Text, nullable=True)
    written_at: Mapped[datetime] = mapped_column(default=utcnow)


class WriteRejection(Base):
    """A record the CRM refused, with the CRM's own code and message."""

    __tablename__ = "write_rejections"
    __table_args__ = (Index("ix_write_rejections_record", "system", "object", "record_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("write_runs.id"))
    system: Mapped[str] = mapped_column(String(20))
    object: Mapped[str] = mapped_column(String(80))
    record_id: Mapped[str] = mapped_column(String(255))
    values: Mapped[dict[str, Any]]
    error_code: Mapped[str] = mapped_column(String(120), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class WriteRun(Base):
    """One pass of the write-back path: how much changed and how many calls it took."""

    __tablename__ = "write_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    records: Mapped[int] = mapped_column(Integer, default=0)
    fields: Mapped[int] = mapped_column(Integer, default=0)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    min_calls: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)


class SyncCursor(Base):
    """Where the incremental sync of one object stopped."""

    __tablename__ = "sync_cursors"
    __table_args__ = (UniqueConstraint("system", "object"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20))
    object: Mapped[str] = mapped_column(String(80))
    cursor: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    """A webhook delivery already accepted: a second one with the same id is a duplicate."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("provider", "delivery_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    delivery_id: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Recording(Base):
    """A call (MiiTel) or meeting (Zoom) recording and the CRM record it is linked to, if any.

    Kept whether or not it matched: ``status`` is ``matched``, ``unmatched`` or ``ambiguous``,
    ``reason`` says why, and an unmatched one is tried again when new records sync.
    """

    __tablename__ = "recordings"
    __table_args__ = (
        UniqueConstraint("provider", "external_id"),
        Index("ix_recordings_status", "status"),
        Index("ix_recordings_link", "system", "matched_object", "matched_record_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    url: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime | None] = mapped_column(nullable=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    phones: Mapped[list[str]] = mapped_column(JSON, default=list)
    emails: Mapped[list[str]] = mapped_column(JSON, default=list)
    host_email: Mapped[str] = mapped_column(String(200), default="")
    user_id: Mapped[str] = mapped_column(String(200), default="")
    system: Mapped[str | None] = mapped_column(String(20), nullable=True)
    matched_object: Mapped[str | None] = mapped_column(String(40), nullable=True)
    matched_record_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(12), default="unmatched")
    reason: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    matched_at: Mapped[datetime | None] = mapped_column(nullable=True)


class OwedWork(Base):
    """Work tasuki has accepted and not yet finished: the store's record of it, so that Redis
    is a cache of work and not its only copy (see :mod:`tasuki.owed`).

    A row is written in the same transaction as the change that makes the work due (a webhook's
    delivery ids, a sync's snapshots) and deleted in the same transaction as the work's own
    effects. ``version`` grows each time the work is owed again, so a job that finished the
    work it read never deletes a newer debt.
    """

    __tablename__ = "owed_work"
    __table_args__ = (
        UniqueConstraint("kind", "object", "record_id"),
        Index("ix_owed_work_owed_at", "owed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    object: Mapped[str] = mapped_column(String(80), default="")
    record_id: Mapped[str] = mapped_column(String(64), default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    owed_at: Mapped[datetime] = mapped_column(default=utcnow)
    job_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ReplanMark(Base):
    """A record whose write-back values may have changed since a write-back pass last planned
    them (see :mod:`tasuki.replan`), written in the same transaction as the change: a verdict
    judged anew, a value tasuki wrote changed in the CRM. ``version`` grows with each change, so
    a pass clears only what it planned. A row with ``object`` ``*`` keeps the digest of the
    write-back settings the last full plan ran under."""

    __tablename__ = "replan_marks"
    __table_args__ = (UniqueConstraint("system", "object", "record_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20))
    object: Mapped[str] = mapped_column(String(80))
    record_id: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer, default=1)
    marked_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecordKey(Base):
    """A match key of one live CRM snapshot (:mod:`tasuki.recordings.keys`): the index a
    re-match pass reads instead of every snapshot. Written with the snapshot, in the sync's
    transaction (:mod:`tasuki.recordings.index`); a deleted record has none."""

    __tablename__ = "record_keys"
    __table_args__ = (
        UniqueConstraint("system", "object", "record_id", "kind", "value"),
        Index("ix_record_keys_value", "system", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20))
    object: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(Text)


class RecordingKey(Base):
    """A match key of one recording, from what its provider told: the way from a changed
    CRM record to the pending recordings it may concern."""

    __tablename__ = "recording_keys"
    __table_args__ = (
        UniqueConstraint("recording_id", "kind", "value"),
        Index("ix_recording_keys_value", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(Text)


class RematchMark(Base):
    """A match key whose records changed since a re-match pass last looked (see
    :mod:`tasuki.recordings.rematch`), or a recording whose facts changed (``kind``
    ``recording``, no system), written in the same transaction as the change. ``version`` grows
    with each change, so a pass clears only what it read. A row with ``kind`` ``*`` keeps the
    digest of the matching settings the last full pass ran under."""

    __tablename__ = "rematch_marks"
    __table_args__ = (UniqueConstraint("system", "kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    marked_at: Mapped[datetime] = mapped_column(default=utcnow)


class WriteIntent(Base):
    """A value about to be sent to the CRM, recorded before the call (see
    :mod:`tasuki.writeback`): after a crash or a timeout, the next pass reads these records back
    and learns what the CRM already holds instead of writing the batch again."""

    __tablename__ = "write_intents"
    __table_args__ = (UniqueConstraint("system", "object", "record_id", "field"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20))
    object: Mapped[str] = mapped_column(String(80))
    record_id: Mapped[str] = mapped_column(String(255))
    field: Mapped[str] = mapped_column(String(120))
    value: Mapped[str | None] = mapped_column(Text, nullable=True)
    key_field: Mapped[str | None] = mapped_column(String(120), nullable=True)
    """The external-id field the record is upserted on, or None when written by CRM id."""
    intended_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobRun(Base):
    """One execution of a job (see :mod:`tasuki.ops.runs`): what ran, how long, what it did.

    Written when the job starts (``status`` ``started``) and completed when it ends
    (``finished`` or ``failed``); a row left ``started`` is a run whose process died. RQ keeps
    no results (``result_ttl`` 0), so this is where ``tasuki runs`` finds them.
    """

    __tablename__ = "job_runs"
    __table_args__ = (
        Index("ix_job_runs_started_at", "started_at"),
        Index("ix_job_runs_func_started_at", "func", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    func: Mapped[str] = mapped_column(String(60))
    job_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    queue: Mapped[str | None] = mapped_column(String(80), nullable=True)
    worker: Mapped[str] = mapped_column(String(120), default="")
    status: Mapped[str] = mapped_column(String(10))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    args: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    figures: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")


class NotificationEntry(Base):
    """The notification ledger: one row per message tasuki owes a recipient (see
    :mod:`tasuki.notify.ledger`), written *before* the message is sent.

    Keyed by (rule, subject, occurrence, recipient), so a retried job or a second worker never
    sends the same message twice: the row is claimed (``sending``) before the call and carries
    the outcome after it (``sent``, ``failed``, ``unknown``, ``skipped``; ``pending`` when a
    transient failure released it for the next sweep). ``result`` keeps what the service said on
    success (Slack's channel and ``ts``, the SMTP server's reply), ``error`` what it said on
    failure (Slack's error code, the SMTP reply)."""

    __tablename__ = "notification_ledger"
    __table_args__ = (
        UniqueConstraint("rule_id", "subject", "occurrence", "recipient"),
        Index("ix_notification_ledger_status", "status", "claimed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(80))
    subject: Mapped[str] = mapped_column(String(200))
    occurrence: Mapped[str] = mapped_column(String(120))
    recipient: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10))
    medium: Mapped[str] = mapped_column(String(10), default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    result: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")


class SlackUser(Base):
    """Who a CRM e-mail address is in Slack (``users.lookupByEmail``), kept for a while so each
    message does not cost a look-up; ``user_id`` None: no Slack account has that address."""

    __tablename__ = "slack_users"
    __table_args__ = (UniqueConstraint("email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    looked_up_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlarmRow(Base):
    """One partial-optimisation alarm (see :mod:`tasuki.alarms`): in ``period`` the subject's
    own KPI improved over ``previous_period`` by at least ``own_threshold`` while the neighbour
    KPI it feeds fell by at least ``neighbour_threshold``. Thresholds are relative changes
    (0.1 = 10 %). Labels and kinds of both KPIs are kept as they were when raised.

    Keyed by (system, pair, subject, period), so evaluating a period twice keeps one row; the
    figures are stored so the alarm explains itself without recomputing."""

    __tablename__ = "alarms"
    __table_args__ = (
        UniqueConstraint("system", "pair_id", "subject_kind", "subject_id", "period"),
        Index("ix_alarms_period", "period", "subject_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20))
    pair_id: Mapped[str] = mapped_column(String(80))
    pair_label: Mapped[str] = mapped_column(String(200), default="")
    department: Mapped[str] = mapped_column(String(4))
    subject_kind: Mapped[str] = mapped_column(String(12))
    subject_id: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(16))
    previous_period: Mapped[str] = mapped_column(String(16))
    own_kpi_id: Mapped[str] = mapped_column(String(80))
    own_label: Mapped[str] = mapped_column(String(200), default="")
    own_is_ratio: Mapped[bool] = mapped_column(Boolean, default=False)
    own_previous: Mapped[float] = mapped_column(Float)
    own_current: Mapped[float] = mapped_column(Float)
    own_threshold: Mapped[float] = mapped_column(Float)
    neighbour_kpi_id: Mapped[str] = mapped_column(String(80))
    neighbour_label: Mapped[str] = mapped_column(String(200), default="")
    neighbour_is_ratio: Mapped[bool] = mapped_column(Boolean, default=False)
    neighbour_previous: Mapped[float] = mapped_column(Float)
    neighbour_current: Mapped[float] = mapped_column(Float)
    neighbour_threshold: Mapped[float] = mapped_column(Float)
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsoleUser(Base):
    """Someone who may sign in to the Sales Ops console (see :mod:`tasuki.console.accounts`).

    A local account has a ``password_hash`` (scrypt); one that signs in through the company's
    identity provider (OpenID Connect) has none and is matched by ``email``. ``role`` is
    ``viewer`` (reads everything) or ``ops`` (also runs operations)."""

    __tablename__ = "console_users"
    __table_args__ = (UniqueConstraint("username"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(10))
    password_hash: Mapped[str | None] = mapped_column(String(300), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(nullable=True)


class LoginLink(Base):
    """A one-time sign-in link (``tasuki serve --demo``): only the token's SHA-256 is kept, and
    the link is spent by its first use or at ``expires_at``."""

    __tablename__ = "console_login_links"
    __table_args__ = (UniqueConstraint("token_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)


class StoreIdentity(Base):
    """This store's random id, one row written when the store is created (migration 0015):
    webhook intake remembers delivery ids in Redis under it (:mod:`tasuki.deliveries`)."""

    __tablename__ = "store_identity"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
