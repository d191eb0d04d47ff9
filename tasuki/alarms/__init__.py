"""The partial-optimisation alarm: a department's own KPI improving period over period while
the neighbour KPI it feeds gets worse (more MQLs, fewer of them turned into meetings).

- :func:`evaluate` compares a period with the one before from the KPI values, per department,
  team and person, and stores the alarms that hold (idempotent per period, subject and pair).
- :func:`evaluate_recent` does it for the last two closed periods (a nightly job's call).
- :func:`raised` reads the stored alarms of a period (the console and notifications use it;
  one indexed query, nothing recomputed).
- :class:`Alarm` explains itself: both periods' figures of both KPIs, their absolute and
  relative change and the thresholds crossed (:attr:`Alarm.explanation`).
- :func:`alarm_book` reads ``alarms.yaml`` (beside ``tasuki.yaml``, else the shipped default),
  every mistake placed at FILE:LINE:COL; the format is described in :mod:`tasuki.alarms.schema`.
"""

from __future__ import annotations

from tasuki.alarms.alarm import Alarm, Change, raised
from tasuki.alarms.evaluation import (
    AlarmPeriodError,
    check_period,
    evaluate,
    evaluate_recent,
    last_closed_period,
    recent_periods,
    settles_at,
    unsettled,
)
from tasuki.alarms.schema import AlarmBook, AlarmPair, alarm_book, config_path, load_alarm_book

__all__ = [
    "Alarm",
    "AlarmBook",
    "AlarmPair",
    "AlarmPeriodError",
    "Change",
    "alarm_book",
    "check_period",
    "config_path",
    "evaluate",
    "evaluate_recent",
    "last_closed_period",
    "recent_periods",
    "load_alarm_book",
    "raised",
    "settles_at",
    "unsettled",
]
