"""Checks beyond the record's own fields: an artifact attached, a related record.

``artifact``: a call or meeting recording linked to the record. It is satisfied by an
:class:`~tasuki.verdicts.Artifact` of an allowed ``kind`` (on an allowed host, when ``hosts`` is
given) whose time falls in the window around the handoff (``before`` / ``after``, each side
unbounded when not given), or, with ``url_field``, by that field holding a URL on an allowed
host: CRMs often carry the recording link (MiiTel, Zoom) in a field instead.

``related``: the related record of ``object`` (e.g. the lead's account) exists and, with
``require``, satisfies that check (whose fields name the related object, ``account.is_target``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rules.checks.base import Check, CheckParser, YamlPath, register
from rules.checks.fields import parse_hosts, url_problem
from rules.values import FieldRef, is_empty
from tasuki.calendar import BusinessCalendar
from tasuki.durations import Duration
from tasuki.verdicts import HandoffContext

ARTIFACT_KINDS = ("call", "meeting")
"""Kinds of recording the pipeline links to records."""


@register("artifact")
@dataclass(frozen=True, slots=True)
class ArtifactAttached(Check):
    """A recording of an allowed kind is linked to the record, near the handoff."""

    kinds: tuple[str, ...]
    hosts: tuple[str, ...]
    before: Duration | None
    after: Duration | None
    url_field: FieldRef | None
    name = "artifact"
    optional = ("kind", "hosts", "before", "after", "url_field")

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        kinds = p.texts(at + ("kind",), data["kind"]) if "kind" in data else ARTIFACT_KINDS
        for i, k in enumerate(kinds or ()):
            if k not in ARTIFACT_KINDS:
                where = at + ("kind", i) if isinstance(data.get("kind"), list) else at + ("kind",)
                p.error(where, f"unknown artifact kind {k!r}; known: {', '.join(ARTIFACT_KINDS)}")
                kinds = None
        hosts = parse_hosts(p, at + ("hosts",), data["hosts"]) if "hosts" in data else ()
        before = p.duration(at + ("before",), data["before"]) if "before" in data else None
        after = p.duration(at + ("after",), data["after"]) if "after" in data else None
        url_field = p.field(at + ("url_field",), data["url_field"]) if "url_field" in data else None
        if (
            kinds is None
            or hosts is None
            or ("before" in data and before is None)
            or ("after" in data and after is None)
            or ("url_field" in data and url_field is None)
        ):
            return None
        return cls(kinds, hosts, before, after, url_field)

    def holds(self, ctx: HandoffContext, calendar: BusinessCalendar) -> bool:
        """True when a recording is attached (what :meth:`evaluate` decides, without why)."""
        for art in ctx.artifacts:
            if art.kind in self.kinds and self._in_window(ctx, calendar, art.at):
                if not self.hosts or url_problem(art.url, self.hosts, ("https", "http")) is None:
                    return True
        if self.url_field is not None:
            value = self.url_field.get(ctx)
            if not is_empty(value) and url_problem(str(value), self.hosts, ("https",)) is None:
                return True
        return False

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        if self.holds(ctx, calendar):
            return None
        what = " or ".join(self.kinds)
        fallback = f" and {self.url_field} has no recording link" if self.url_field else ""
        return f"no {what} recording attached{self._window_text()}{fallback}"

    def _in_window(self, ctx: HandoffContext, calendar: BusinessCalendar, at: datetime) -> bool:
        if self.before is None and self.after is None:
            return True
        ts, handed = at.timestamp(), ctx.handed_at.timestamp()
        if self.before is not None and self.before.exceeded(calendar, ts, handed):
            return False
        return self.after is None or not self.after.exceeded(calendar, handed, ts)

    def _window_text(self) -> str:
        parts = [f"{self.before} before"] if self.before else []
        parts += [f"{self.after} after"] if self.after else []
        return f" within {' / '.join(parts)} the handoff" if parts else ""

    def describe(self) -> str:
        hosts = f" on {', '.join(self.hosts)}" if self.hosts else ""
        field = f" (or a link in {self.url_field})" if self.url_field else ""
        return (
            f"a {' or '.join(self.kinds)} recording{hosts} is attached{self._window_text()}{field}"
        )


@register("related")
@dataclass(frozen=True, slots=True)
class Related(Check):
    """The related record of ``object`` exists and satisfies ``require`` (if given)."""

    object: str
    require: Check | None
    name = "related"
    required = ("object",)
    optional = ("require",)

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        obj = data["object"]
        if not isinstance(obj, str) or obj not in p.catalog:
            p.error(
                at + ("object",), f"unknown object {obj!r}; known objects: {', '.join(p.catalog)}"
            )
            return None
        require = p.check(at + ("require",), data["require"]) if "require" in data else None
        if "require" in data and require is None:
            return None
        return cls(obj, require)

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        if ctx.object != self.object and not ctx.related.get(self.object):
            return f"no related {self.object}"
        return None if self.require is None else self.require.evaluate(ctx, calendar)

    def describe(self) -> str:
        if self.require is None:
            return f"a related {self.object} exists"
        return f"a related {self.object} exists and {self.require.describe()}"
