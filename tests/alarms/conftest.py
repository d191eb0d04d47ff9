"""Constructed orgs for the partial-optimisation alarm, inserted into the store's tables; the
KPIs are computed from them by the real computation (:func:`tasuki.kpis.compute`).

Times are UTC; Tokyo is UTC+9 and every event here is at 10:00 in Tokyo, well inside its day.
Each MK person hands leads to IS (MK→IS); a lead "meets" when IS hands a deal pointing at it
to FS (IS→FS) two days later, in the same month.
"""

from __future__ import annotations

import pytest

from tasuki.store.db import Store
from tests.alarms.support import Org


@pytest.fixture
def alarm_org(store: Store) -> Org:
    """MQLs up while the MQL→meeting rate falls: M1 hands over 10 leads in September (6 meet)
    and 15 in October (4 meet); M2 10 (5 meet), then 12 (7 meet): both of M2's figures rise.
    MK as a whole: 20 MQLs, 11 meetings (55 %) → 27 MQLs, 11 meetings (40.7 %)."""
    org = Org(store)
    org.mqls("M1", "2026-09", 10, 6)
    org.mqls("M1", "2026-10", 15, 4)
    org.mqls("M2", "2026-09", 10, 5)
    org.mqls("M2", "2026-10", 12, 7)
    return org


@pytest.fixture
def healthy_org(store: Store) -> Org:
    """Both rise: M1 hands over 10 leads in September (5 meet) and 12 in October (8 meet)."""
    org = Org(store)
    org.mqls("M1", "2026-09", 10, 5)
    org.mqls("M1", "2026-10", 12, 8)
    return org
