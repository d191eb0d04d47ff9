"""The events about people's work: failed handoffs, SLAs about to break or broken, and the
feedback loop of FS meeting recordings. Each finder reads the store and returns
:class:`~tasuki.notify.scene.Occurrence` values; nothing here sends anything.

- ``handoff_failed``: a handoff whose verdict is failed. One message per set of things to fix:
  the same verdict re-judged says nothing new; a sender who fixes one of two problems hears
  again what is left.
- ``sla_warning`` / ``sla_breach``: each ``sla`` rule of the rulebook that applies to a recent
  handoff, measured as the rule measures it (business time for business SLAs): the warning when
  ``at`` of the window is used and the end has not happened, the breach when the deadline
  passed (announced even if the end came late, since it was still a breach).
- ``meeting_recording``: a Zoom meeting recording linked to a deal: the IS person who handed the
  deal to FS and the MK person who handed its lead to IS get the link and what FS made of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from rules.checks import Check
from rules.checks.times import Sla
from rules.schema import Rule, RuleSet
from tasuki.calendar import BusinessCalendar
from tasuki.handoffs import contexts_for
from tasuki.judging import SLA_SWEEP_WINDOW
from tasuki.notify.event_types import (
    HandoffOptions,
    RecordingOptions,
    SlaOptions,
    SlaWarningOptions,
)
from tasuki.notify.message import Line, Link, Message
from tasuki.notify.scene import Finder, Occurrence, Scene, span
from tasuki.notify.schema import NotificationRule
from tasuki.store.models import Handoff, Recording, Verdict
from tasuki.verdicts import HandoffContext

RECENT = timedelta(days=30)
"""How far back the finders look for handoffs and recordings (each rule's ``max_age`` then
says how old an event may be to be announced)."""


def _recent_handoffs(
    scene: Scene, options: HandoffOptions, boundaries: Iterable[str] | None = None
) -> list[Handoff]:
    stmt = (
        select(Handoff)
        .where(Handoff.system == scene.system, Handoff.handed_at >= scene.now - RECENT)
        .options(selectinload(Handoff.verdict).selectinload(Verdict.violations))
        .order_by(Handoff.handed_at, Handoff.id)
    )
    wanted = set(options.boundaries or ()) | set(boundaries or ())
    if options.boundaries is not None or boundaries is not None:
        stmt = stmt.where(Handoff.boundary.in_(sorted(wanted)))
    return list(scene.session.scalars(stmt))


def handoff_failed(scene: Scene, rule: NotificationRule) -> list[Occurrence]:
    """Failed handoffs, one occurrence per set of violations."""
    options: HandoffOptions = rule.options
    out = []
    for h in _recent_handoffs(scene, options):
        v = h.verdict
        if v is None or v.outcome != "failed":
            continue
        digest = hashlib.sha256(
            "\n".join(sorted({x.rule_id for x in v.violations})).encode()
        ).hexdigest()[:16]
        fields = scene.record(h.object, h.record_id)
        title = scene.title(h.object, h.record_id, fields)
        errors = [x for x in v.violations if x.severity == "error"]
        warnings = [x for x in v.violations if x.severity != "error"]
        message = Message(
            title=f"Handoff failed: {title} ({h.boundary})",
            intro=(
                f"The {h.boundary} handoff of {title} from {scene.name(h.sender_id)} to "
                f"{scene.name(h.receiver_id)} on {scene.local(h.handed_at)} failed the handoff "
                f"rules (score {v.score}/100). To fix:"
            ),
            lines=tuple(Line(x.message) for x in errors)
            + tuple(Line(f"(warning) {x.message}") for x in warnings),
            link=scene.link(h.object, h.record_id),
            footer="Fix the record in the CRM; tasuki judges it again when it changes.",
        )
        out.append(
            Occurrence(
                f"handoff:{h.id}", f"fix:{digest}", v.evaluated_at, message, scene.handoff_people(h)
            )
        )
    return out


def _holds(check: Check, ctx: HandoffContext, calendar: BusinessCalendar) -> bool:
    """A ``when`` condition holds (an unreadable value: it does not), as the engine reads it."""
    try:
        return check.evaluate(ctx, calendar) is None
    except (ValueError, TypeError, OverflowError):
        return False


def _sla_rules(scene: Scene, options: SlaOptions) -> dict[str, list[tuple[RuleSet, Rule]]]:
    """Boundary → (rule set, rule) of every applicable ``sla`` rule."""
    wanted = set(options.rules) if options.rules is not None else None
    out: dict[str, list[tuple[RuleSet, Rule]]] = {}
    for rs in scene.rt.rulebook.rule_sets:
        if options.boundaries is not None and rs.boundary not in options.boundaries:
            continue
        for r in rs.rules:
            if isinstance(r.check, Sla) and (wanted is None or r.id in wanted):
                out.setdefault(rs.boundary, []).append((rs, r))
    return out


def _sla(scene: Scene, rule: NotificationRule, *, breach: bool) -> list[Occurrence]:
    options: SlaOptions = rule.options
    share = rule.options.at if isinstance(rule.options, SlaWarningOptions) else 1.0
    by_boundary = _sla_rules(scene, options)
    if not by_boundary:
        return []
    handoffs = [
        h
        for h in _recent_handoffs(scene, HandoffOptions(), by_boundary)
        if h.handed_at >= scene.now - SLA_SWEEP_WINDOW  # as far back as SLAs are re-judged
    ]
    contexts = contexts_for(scene.session, scene.rt.settings.config, handoffs, scene.now)
    cal = scene.calendar
    out = []
    for h, ctx in zip(handoffs, contexts, strict=True):
        for rs, r in by_boundary.get(h.boundary, []):
            if rs.object not in (None, h.object):
                continue
            if any(c is not None and not _holds(c, ctx, cal) for c in (rs.when, r.when)):
                continue
            found = _measure(scene, h, ctx, r, share, breach=breach)
            if found is not None:
                out.append(found)
    return out


def _measure(
    scene: Scene, h: Handoff, ctx: HandoffContext, r: Rule, share: float, *, breach: bool
) -> Occurrence | None:
    check = r.check
    assert isinstance(check, Sla)
    cal = scene.calendar
    try:
        begun = check.start.get(ctx, cal)
        done = check.end.ts(ctx, cal)
    except (ValueError, TypeError, OverflowError):
        return None
    if begun is None:
        return None
    within = check.within
    limit = within.seconds(cal)
    end = scene.now.timestamp() if done is None else done
    used = within.elapsed(cal, begun.timestamp(), end)
    deadline = within.after(cal, begun)
    late = within.exceeded(cal, begun.timestamp(), end)
    if breach and not late:
        return None
    if not breach and (late or done is not None or used < share * limit):
        return None
    if breach:
        at, key = deadline, "breach"
    else:
        amount = timedelta(seconds=share * limit)
        at = cal.add_business_time(begun, amount) if within.business else begun + amount
        key = f"warning:{share:g}"
    fields = scene.record(h.object, h.record_id)
    title = scene.title(h.object, h.record_id, fields)
    kind = "business time" if within.business else "time"
    if breach:
        head = f"SLA breached: {title} ({h.boundary})"
        state = (
            f"{check.end} came {span(used)} after {check.start}"
            if done is not None
            else f"no {check.end} yet, {span(used)} of {kind} after {check.start}"
        )
        intro = f"{check.describe()}. The deadline was {scene.local(deadline)}: {state}."
    else:
        head = f"SLA {round(100 * used / limit)}% used: {title} ({h.boundary})"
        intro = (
            f"{check.describe()}: {span(used)} of {within} used, {span(limit - used)} of "
            f"{kind} left; deadline {scene.local(deadline)}."
        )
    message = Message(
        title=head,
        intro=intro,
        lines=(
            Line(r.message),
            Line(f"Handed over by {scene.name(h.sender_id)} to {scene.name(h.receiver_id)}"),
        ),
        link=scene.link(h.object, h.record_id),
    )
    return Occurrence(f"handoff:{h.id}:{r.id}", key, at, message, scene.handoff_people(h))


def sla_warning(scene: Scene, rule: NotificationRule) -> list[Occurrence]:
    """SLAs that have used ``at`` of their window and are neither met nor broken."""
    return _sla(scene, rule, breach=False)


def sla_breach(scene: Scene, rule: NotificationRule) -> list[Occurrence]:
    """SLAs whose deadline passed."""
    return _sla(scene, rule, breach=True)


def _latest(handoffs: Sequence[Handoff], sender: str, receiver: str) -> Handoff | None:
    found = [
        h for h in handoffs if (h.sender_department, h.receiver_department) == (sender, receiver)
    ]
    return max(found, key=lambda h: h.handed_at) if found else None


def meeting_recording(scene: Scene, rule: NotificationRule) -> list[Occurrence]:
    """Zoom meeting recordings linked to a deal: who set the meeting and who sourced the lead
    see how the customer reacted, and what FS made of it."""
    options: RecordingOptions = rule.options
    recordings = scene.session.scalars(
        select(Recording)
        .where(
            Recording.kind == "meeting",
            Recording.status == "matched",
            Recording.system == scene.system,
            Recording.matched_object == "deal",
            Recording.matched_at >= scene.now - RECENT,
        )
        .order_by(Recording.matched_at, Recording.id)
    )
    out = []
    for rec in recordings:
        deal_id = str(rec.matched_record_id)
        deal = scene.record("deal", deal_id)
        handoffs = list(
            scene.session.scalars(
                select(Handoff)
                .where(Handoff.system == scene.system)
                .where(
                    ((Handoff.object == "deal") & (Handoff.record_id == deal_id))
                    | (
                        (Handoff.object == "lead")
                        & (Handoff.record_id == str(deal.get("lead_id") or "\0"))
                    )
                )
                .options(selectinload(Handoff.verdict))
            )
        )
        to_fs = _latest(handoffs, "IS", "FS")
        to_is = _latest(handoffs, "MK", "IS")
        is_person = to_fs.sender_id if to_fs else (str(deal.get("sourced_by") or "") or None)
        fs_person = to_fs.receiver_id if to_fs else (str(deal.get("owner") or "") or None)
        title = scene.title("deal", deal_id, deal)
        lines = [Line("Meeting recording", Link(rec.url, "watch on Zoom") if rec.url else None)]
        for name in options.answer_fields:
            value = deal.get(name)
            if value not in (None, ""):
                lines.append(Line(f"{name.replace('_', ' ')}: {value}"))
        if to_fs is not None and to_fs.verdict is not None:
            v = to_fs.verdict
            lines.append(Line(f"IS→FS handoff verdict: {v.outcome}, score {v.score}/100"))
        when = f" on {scene.local(rec.at)}" if rec.at else ""
        message = Message(
            title=f"See how the customer reacted: {title}",
            intro=(
                f"The Zoom recording of the FS meeting{when} with {title} is in. "
                f"{scene.name(fs_person)} (FS) met the customer your work brought in."
            ),
            lines=tuple(lines),
            link=scene.link("deal", deal_id),
        )
        people = {
            "is_person": is_person,
            "mk_person": to_is.sender_id if to_is else None,
            "fs_person": fs_person,
        }
        at = rec.matched_at or rec.received_at
        out.append(Occurrence(f"recording:{rec.id}", f"deal:{deal_id}", at, message, people))
    return out


FINDERS: dict[str, Finder] = {
    "handoff_failed": handoff_failed,
    "sla_warning": sla_warning,
    "sla_breach": sla_breach,
    "meeting_recording": meeting_recording,
}
"""Finders of the events about people's work, by event name."""
