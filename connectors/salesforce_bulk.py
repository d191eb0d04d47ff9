"""Bulk API 2.0 ingest: one ``update`` or ``upsert`` job for many records, with per-record results.

The lifecycle (Salesforce's ``jobs/ingest`` resource): create the job, upload the CSV, mark it
``UploadComplete``, poll until ``JobComplete`` (or ``Failed``/``Aborted``), then read
``failedResults`` row by row. Each row carries Salesforce's error (``sf__Error``:
``CODE:message:fields --``) and the uploaded columns, so it is matched to its write by the key
column: ``Id`` for an update (``sf__Id`` too), the external-id field for an upsert (a record the
upsert could not create has no ``sf__Id``). On a job that failed as a whole, the records not in
``successfulResults`` are reported as not written, so the next write-back pass retries them.

Requests go through a :class:`Send` the connector provides, which carries the session, timeout,
limit-header reading, session renewal and error mapping.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from connectors.salesforce_records import bulk_error
from tasuki.crm import RecordWrite, WriteResult
from tasuki.errors import CrmUnavailable

NULL = "#N/A"
"""How a Bulk CSV sets a field to null (an empty cell leaves the field unchanged)."""

FINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})


class Send(Protocol):
    """One authenticated request to ``/services/data/vXX.X/<path>``; raises CrmError on failure."""

    def __call__(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> requests.Response: ...


@dataclass(frozen=True)
class Polling:
    """How to wait for a job: first interval, growth factor, longest interval, total budget."""

    interval: float = 2.0
    factor: float = 1.5
    longest: float = 15.0
    budget: float = 600.0


def _cell(value: Any) -> str:
    if value is None or value == "":
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_csv(writes: Sequence[RecordWrite], key_column: str = "Id") -> str:
    """The job's CSV: ``key_column`` (``Id``, or the external-id field of an upsert) holding each
    ``record_id``, and every other field any record sets; cells a record doesn't set stay empty
    (unchanged), ``None``/"" become ``#N/A`` (null)."""
    key = key_column.lower()  # Salesforce field names are case-insensitive
    columns: list[str] = []
    for w in writes:
        columns.extend(c for c in w.values if c not in columns and c.lower() != key)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([key_column, *columns])
    for w in writes:
        writer.writerow(
            [w.record_id, *(_cell(w.values[c]) if c in w.values else "" for c in columns)]
        )
    return out.getvalue()


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text))) if text.strip() else []


def _json(response: requests.Response) -> dict[str, Any]:
    data = response.json()
    return data if isinstance(data, dict) else {}


def _row_key(row: dict[str, str], key_column: str) -> str:
    if key_column == "Id":
        return row.get("sf__Id") or row.get("Id", "")
    return row.get(key_column, "")


def run_update_job(
    send: Send,
    object: str,
    writes: Sequence[RecordWrite],
    polling: Polling = Polling(),
    sleep: Callable[[float], None] = time.sleep,
) -> list[WriteResult]:
    """Update ``writes`` (``record_id`` the Salesforce id) through one ingest job; one result per
    write, in order."""
    spec = {"object": object, "operation": "update", "contentType": "CSV", "lineEnding": "LF"}
    return _run_job(send, spec, "Id", writes, polling, sleep)


def run_upsert_job(
    send: Send,
    object: str,
    key_field: str,
    writes: Sequence[RecordWrite],
    polling: Polling = Polling(),
    sleep: Callable[[float], None] = time.sleep,
) -> list[WriteResult]:
    """Create or update ``writes`` matched on the external-id field ``key_field`` (whose value is
    ``record_id``) through one ingest job; one result per write, in order, keyed by that value."""
    spec = {
        "object": object,
        "operation": "upsert",
        "externalIdFieldName": key_field,
        "contentType": "CSV",
        "lineEnding": "LF",
    }
    return _run_job(send, spec, key_field, writes, polling, sleep)


def _run_job(
    send: Send,
    spec: dict[str, str],
    key_column: str,
    writes: Sequence[RecordWrite],
    polling: Polling,
    sleep: Callable[[float], None],
) -> list[WriteResult]:
    """Create the job ``spec`` describes, upload ``writes``, wait, and map the results back to
    the writes by ``key_column``."""
    job = _json(send("POST", "jobs/ingest", body=json.dumps(spec).encode()))
    job_id = str(job["id"])
    send(
        "PUT",
        f"jobs/ingest/{job_id}/batches",
        body=to_csv(writes, key_column).encode("utf-8"),
        content_type="text/csv",
    )
    body = json.dumps({"state": "UploadComplete"}).encode()
    info = _json(send("PATCH", f"jobs/ingest/{job_id}", body=body))
    waited, interval = 0.0, polling.interval
    while info.get("state") not in FINAL_STATES:
        if waited >= polling.budget:
            raise CrmUnavailable(
                f"Bulk job {job_id} still {info.get('state')} after {waited:.0f}s; "
                "the next write-back pass sends what it did not confirm",
                url=f"jobs/ingest/{job_id}",
            )
        sleep(interval)
        waited += interval
        interval = min(interval * polling.factor, polling.longest)
        info = _json(send("GET", f"jobs/ingest/{job_id}"))
    failed: dict[str, tuple[str, str]] = {}
    for row in _rows(send("GET", f"jobs/ingest/{job_id}/failedResults/", accept="text/csv").text):
        failed[_row_key(row, key_column)] = bulk_error(row.get("sf__Error", ""))
    if info.get("state") == "JobComplete":
        done = {w.record_id for w in writes}
    else:
        ok = send("GET", f"jobs/ingest/{job_id}/successfulResults/", accept="text/csv")
        done = {_row_key(row, key_column) for row in _rows(ok.text)}
    reason = str(info.get("errorMessage") or f"bulk job {job_id} ended {info.get('state')}")
    results: list[WriteResult] = []
    for w in writes:
        if w.record_id in failed:
            code, message = failed[w.record_id]
            results.append(WriteResult(w.record_id, False, code, message))
        elif w.record_id in done:
            results.append(WriteResult(w.record_id, True))
        else:
            results.append(WriteResult(w.record_id, False, "NOT_PROCESSED", reason))
    return results
