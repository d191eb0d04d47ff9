"""Single facts about this installation, kept in the store by key (``store_facts``).

``history_before``: handoffs handed over before this instant are history. The first back-fill
(``tasuki sync`` reading an object from the beginning) sets it to the time it ran, or to its
``--since``; their verdicts are judged and kept, and written to the CRM only when asked
(``--write-history``). A process that never back-filled has none: everything is written, as
before.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tasuki.store.models import StoreFact, utcnow

HISTORY_BEFORE = "history_before"


def history_before(session: Session) -> datetime | None:
    """Handoffs before this instant are history (None: no back-fill set it)."""
    fact = session.get(StoreFact, HISTORY_BEFORE)
    return None if fact is None else datetime.fromisoformat(fact.value)


def keep_history_before(session: Session, at: datetime) -> datetime:
    """Set ``history_before`` to ``at`` unless it is set already; returns the one in force."""
    fact = session.get(StoreFact, HISTORY_BEFORE)
    if fact is not None:
        return datetime.fromisoformat(fact.value)
    session.add(StoreFact(key=HISTORY_BEFORE, value=at.isoformat(), updated_at=utcnow()))
    return at
