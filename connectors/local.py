"""The embedded CRM: a small CRM kept in one SQLite file, speaking the connector interface.

It stands in for Salesforce in the demo and the tests, with the same shape of behaviour that
matters to tasuki: Salesforce-like object and field names, field history for tracked fields, an
ever-increasing modstamp for incremental sync (deletes included), batched writes of at most
``write_batch_size`` records that succeed or fail per record (unknown field, deleted record), and
an outbox of change notices that the demo delivers to tasuki's webhook like a real CRM would.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasuki.crm import (
    CallCounter,
    ChangePage,
    FieldChange,
    RawRecord,
    ReadEstimate,
    RecordWrite,
    WriteResult,
    history_reads,
    pages,
)

WRITE_BATCH_SIZE = 200
"""Records per write call, as Salesforce's sObject Collections allow."""

READ_BATCH_SIZE = 2000
"""Ids per read call, as Salesforce's sObject Collections retrieve allows."""

CHANGE_PAGE_SIZE = 2000
"""Records per page of :meth:`LocalCrm.changes`."""

TRACKED_FIELDS = frozenset({"OwnerId", "StageName", "Status"})
"""Fields whose every change is kept in history, like Salesforce field history tracking."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (name TEXT PRIMARY KEY, fields TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    object TEXT NOT NULL, id TEXT NOT NULL, fields TEXT NOT NULL,
    seq INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (object, id));
CREATE INDEX IF NOT EXISTS records_seq ON records (object, seq);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY, object TEXT NOT NULL, record_id TEXT NOT NULL, field TEXT NOT NULL,
    old TEXT, new TEXT, at TEXT NOT NULL, by TEXT);
CREATE INDEX IF NOT EXISTS history_record ON history (object, record_id);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY, object TEXT NOT NULL, record_id TEXT NOT NULL,
    changed_by TEXT, delivered INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _fields_of(db: sqlite3.Connection, object: str) -> set[str]:
    """The fields ``object`` accepts (none when it was never defined)."""
    row = db.execute("SELECT fields FROM objects WHERE name=?", (object,)).fetchone()
    return set(json.loads(row[0])) if row else set()


def _invalid_field(record_id: str, object: str, field: str) -> WriteResult:
    """Salesforce's refusal of a write naming a field the object does not have."""
    return WriteResult(
        record_id, False, "INVALID_FIELD", f"No such column '{field}' on entity '{object}'"
    )


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


class LocalCrm:
    """The embedded CRM and its connector. ``path`` is its SQLite file (``:memory:`` for tests)."""

    system = "local"
    read_batch_size = READ_BATCH_SIZE
    write_batch_size = WRITE_BATCH_SIZE

    def __init__(self, path: str | Path, *, integration_user: str = "tasuki") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self.integration_user = integration_user
        self.calls = CallCounter()

    # -- administration (what people and the demo do in the CRM) -------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def define(self, object: str, fields: Sequence[str]) -> None:
        """Declare an object and the fields it accepts (writes to other fields are rejected)."""
        with self._tx() as db:
            known = _fields_of(db, object)
            known.update(fields)
            db.execute(
                "INSERT INTO objects (name, fields) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET fields=excluded.fields",
                (object, json.dumps(sorted(known))),
            )

    def meta(self, key: str) -> str | None:
        """A free-form value the owner of this CRM stored (the demo keeps its seed here)."""
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a free-form value."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _next_seq(self, db: sqlite3.Connection) -> int:
        row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()
        return int(row[0]) + 1

    def upsert(
        self,
        object: str,
        record_id: str,
        values: Mapping[str, Any],
        *,
        at: datetime,
        by: str | None = None,
    ) -> None:
        """Create or change a record as a CRM user ``by`` would, at time ``at`` (history kept)."""
        with self._tx() as db:
            self._apply(db, object, record_id, values, at=at, by=by)

    def _apply(
        self,
        db: sqlite3.Connection,
        object: str,
        record_id: str,
        values: Mapping[str, Any],
        *,
        at: datetime,
        by: str | None,
    ) -> None:
        row = db.execute(
            "SELECT fields FROM records WHERE object=? AND id=?", (object, record_id)
        ).fetchone()
        current: dict[str, Any] = json.loads(row[0]) if row else {}
        for name, value in values.items():
            old = current.get(name)
            if name in TRACKED_FIELDS and old != value:
                db.execute(
                    "INSERT INTO history (object, record_id, field, old, new, at, by) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (object, record_id, name, old, value, _iso(at), by),
                )
        current.update(values)
        current["SystemModstamp"] = _iso(at)
        current.setdefault("CreatedDate", _iso(at))
        seq = self._next_seq(db)
        db.execute(
            "INSERT INTO records (object, id, fields, seq, deleted) VALUES (?, ?, ?, ?, 0) "
            "ON CONFLICT(object, id) DO UPDATE SET fields=excluded.fields, seq=excluded.seq",
            (object, record_id, json.dumps(current, ensure_ascii=False), seq),
        )
        db.execute(
            "INSERT INTO outbox (seq, object, record_id, changed_by) VALUES (?, ?, ?, ?)",
            (seq, object, record_id, by),
        )

    def delete(self, object: str, record_id: str) -> None:
        """Delete a record (it stays visible to :meth:`changes` as deleted)."""
        with self._tx() as db:
            seq = self._next_seq(db)
            db.execute(
                "UPDATE records SET deleted=1, seq=? WHERE object=? AND id=?",
                (seq, object, record_id),
            )
            db.execute(
                "INSERT INTO outbox (seq, object, record_id, changed_by) VALUES (?, ?, ?, NULL)",
                (seq, object, record_id),
            )

    def renotify_all(self) -> int:
        """Queue a change notice for every record again (a "resend all"); returns how many."""
        with self._tx() as db:
            rows = db.execute("SELECT object, id FROM records ORDER BY seq").fetchall()
            start = self._next_seq(db)
            db.executemany(
                "INSERT INTO outbox (seq, object, record_id, changed_by) VALUES (?, ?, ?, NULL)",
                [(start + n, obj, rid) for n, (obj, rid) in enumerate(rows)],
            )
        return len(rows)

    def pending_notices(self, limit: int = 100) -> list[tuple[int, str, str, str | None]]:
        """Undelivered change notices: (seq, object, record id, changed by), oldest first."""
        rows = self._db.execute(
            "SELECT seq, object, record_id, changed_by FROM outbox WHERE delivered=0 "
            "ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [(int(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]

    def mark_delivered(self, seqs: Sequence[int]) -> None:
        """The webhook receiver acknowledged these notices."""
        with self._tx() as db:
            db.executemany("UPDATE outbox SET delivered=1 WHERE seq=?", [(s,) for s in seqs])

    def get(self, object: str, record_id: str) -> dict[str, Any] | None:
        """A record's fields as the CRM holds them now (no API call counted)."""
        row = self._db.execute(
            "SELECT fields FROM records WHERE object=? AND id=? AND deleted=0", (object, record_id)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def count(self, object: str) -> int:
        """Live records of ``object``."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM records WHERE object=? AND deleted=0", (object,)
        ).fetchone()
        return int(row[0])

    # -- the connector interface -----------------------------------------------------------------

    @staticmethod
    def _raw(row: sqlite3.Row | tuple[Any, ...], fields: Sequence[str]) -> RawRecord:
        record_id, data, seq, deleted = row[0], json.loads(row[1]), int(row[2]), bool(row[3])
        wanted = {f: data.get(f) for f in fields} if fields else data
        return RawRecord(id=str(record_id), fields=wanted, modstamp=f"{seq:012d}", deleted=deleted)

    def _select(
        self,
        object: str,
        column: str,
        params: Sequence[str],
        values: Sequence[str],
        fields: Sequence[str],
    ) -> list[RawRecord]:
        """Live records of ``object`` whose ``column`` (an SQL expression taking ``params``) is one
        of ``values``, one call per ``read_batch_size`` values; ``column`` is also their id."""
        out: list[RawRecord] = []
        for start in range(0, len(values), self.read_batch_size):
            chunk = list(values[start : start + self.read_batch_size])
            self.calls.add("read")
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT {column}, fields, seq, deleted FROM records "
                f"WHERE object=? AND deleted=0 AND {column} IN ({marks})",
                (*params, object, *params, *chunk),
            ).fetchall()
            out.extend(self._raw(r, fields) for r in rows)
        return out

    def fetch(self, object: str, ids: Sequence[str], fields: Sequence[str]) -> list[RawRecord]:
        """Records by id, one call per ``read_batch_size`` ids; missing and deleted ids left out."""
        return self._select(object, "id", (), ids, fields)

    def fetch_by_key(
        self, object: str, key_field: str, keys: Sequence[str], fields: Sequence[str]
    ) -> list[RawRecord]:
        """Records whose ``key_field`` holds one of ``keys``, each with the key as its id (how
        a write-back reads back the KPI rows it may have upserted); one call per
        ``read_batch_size`` keys."""
        return self._select(object, "json_extract(fields, ?)", (f'$."{key_field}"',), keys, fields)

    def changes(self, object: str, cursor: str | None, fields: Sequence[str]) -> ChangePage:
        """Records whose modstamp is past ``cursor``, deletes included, oldest first."""
        self.calls.add("read")
        after = int(cursor) if cursor else 0
        rows = self._db.execute(
            "SELECT id, fields, seq, deleted FROM records WHERE object=? AND seq>? "
            "ORDER BY seq LIMIT ?",
            (object, after, CHANGE_PAGE_SIZE + 1),
        ).fetchall()
        more = len(rows) > CHANGE_PAGE_SIZE
        rows = rows[:CHANGE_PAGE_SIZE]
        records = [self._raw(r, fields) for r in rows]
        next_cursor = records[-1].modstamp if records else (cursor or "0")
        return ChangePage(records=records, cursor=str(int(next_cursor)), more=more)

    def estimate_reads(
        self, object: str, cursor: str | None, history_fields: Sequence[str]
    ) -> ReadEstimate:
        """Records past ``cursor`` (one counted call) and the pages and history reads they take."""
        self.calls.add("read")
        after = int(cursor) if cursor else 0
        total, live = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(deleted = 0), 0) FROM records WHERE object=? AND seq>?",
            (object, after),
        ).fetchone()
        total, live = int(total), int(live)
        changes = max(1, len(pages(total, CHANGE_PAGE_SIZE)))
        history = 0
        if history_fields and live:
            # Deleted records get no history read; spread them evenly over the pages.
            sizes = [round(n * live / total) for n in pages(total, CHANGE_PAGE_SIZE)]
            history = history_reads([n for n in sizes if n], self.read_batch_size, 10**9, 0)
        return ReadEstimate(total, changes, history, CHANGE_PAGE_SIZE, spent=1)

    def history(self, object: str, ids: Sequence[str], fields: Sequence[str]) -> list[FieldChange]:
        """Tracked-field history of the records ``ids``, oldest first, one call per batch."""
        out: list[FieldChange] = []
        wanted = set(fields)
        for start in range(0, len(ids), self.read_batch_size):
            chunk = list(ids[start : start + self.read_batch_size])
            self.calls.add("read")
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT id, record_id, field, old, new, at, by FROM history "
                f"WHERE object=? AND record_id IN ({marks}) ORDER BY at, id",
                (object, *chunk),
            ).fetchall()
            out.extend(
                FieldChange(
                    id=f"{object}:{r[0]}",
                    record_id=str(r[1]),
                    field=str(r[2]),
                    old=r[3],
                    new=r[4],
                    at=datetime.fromisoformat(r[5]),
                    by=r[6],
                )
                for r in rows
                if not wanted or r[2] in wanted
            )
        return out

    def write(self, object: str, writes: Sequence[RecordWrite]) -> list[WriteResult]:
        """One call; each record succeeds or fails alone (e.g. ``INVALID_FIELD``)."""
        if len(writes) > self.write_batch_size:
            raise ValueError(f"at most {self.write_batch_size} records per write call")
        self.calls.add("write")
        now = datetime.now(UTC)
        results: list[WriteResult] = []
        with self._tx() as db:
            known = _fields_of(db, object)
            for w in writes:
                unknown = sorted(set(w.values) - known)
                state = db.execute(
                    "SELECT deleted FROM records WHERE object=? AND id=?", (object, w.record_id)
                ).fetchone()
                if state is None:
                    results.append(
                        WriteResult(
                            w.record_id, False, "NOT_FOUND", "The requested resource does not exist"
                        )
                    )
                elif state[0]:
                    results.append(
                        WriteResult(w.record_id, False, "ENTITY_IS_DELETED", "entity is deleted")
                    )
                elif unknown:
                    results.append(_invalid_field(w.record_id, object, unknown[0]))
                else:
                    self._apply(db, object, w.record_id, w.values, at=now, by=self.integration_user)
                    results.append(WriteResult(w.record_id, True))
        return results

    def upsert_records(
        self, object: str, key_field: str, writes: Sequence[RecordWrite]
    ) -> list[WriteResult]:
        """One call creating or updating records matched on ``key_field``; each succeeds or fails
        alone (unknown field, a key given twice in one call), like sObject Collections upsert."""
        if len(writes) > self.write_batch_size:
            raise ValueError(f"at most {self.write_batch_size} records per write call")
        if not writes:
            return []
        self.calls.add("write")
        now = datetime.now(UTC)
        counts = Counter(w.record_id for w in writes)
        results: list[WriteResult] = []
        with self._tx() as db:
            known = _fields_of(db, object)
            # Every live record's key, read once for the call.
            ids_by_key = {
                str(key): str(rid)
                for rid, key in db.execute(
                    "SELECT id, json_extract(fields, ?) FROM records WHERE object=? AND deleted=0",
                    (f'$."{key_field}"', object),
                )
                if key is not None
            }
            for w in writes:
                unknown = sorted((set(w.values) | {key_field}) - known)
                if unknown:
                    results.append(_invalid_field(w.record_id, object, unknown[0]))
                    continue
                if counts[w.record_id] > 1:
                    results.append(
                        WriteResult(
                            w.record_id,
                            False,
                            "DUPLICATE_EXTERNAL_ID",
                            f"Duplicate external id specified: {w.record_id}",
                        )
                    )
                    continue
                record_id = ids_by_key.get(w.record_id) or f"{object[:3]}{self._next_seq(db):012d}"
                values = {**w.values, key_field: w.record_id}
                self._apply(db, object, record_id, values, at=now, by=self.integration_user)
                results.append(WriteResult(w.record_id, True))
        return results

    def users(self, fields: Sequence[str]) -> list[RawRecord]:
        """Every user, in one call."""
        self.calls.add("read")
        rows = self._db.execute(
            "SELECT id, fields, seq, deleted FROM records "
            "WHERE object='User' AND deleted=0 ORDER BY id"
        ).fetchall()
        return [self._raw(r, fields) for r in rows]
