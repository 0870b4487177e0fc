"""How a question's verdict and the project's overall health follow from the data and the sources
behind them (the precedence table of docs/ui.md). Pure.

A question (accurate? affordable? patched?) keeps the verdict its data gives, then:

- a source it depends on failing or stale: at least "worth a look" (a problem stays a problem),
  and the cell says why;
- a source it depends on never run: an answer of "fine" becomes "not known" (part of the data
  was never read), with the reason;
- asked (a success target, a budget, inventory sources are configured) but no data: "not known"
  with the reason.

The project is a problem when a question or its alerts are; worth a look when one is; not known
when a question it asks is not known for a reason (or when no question has an answer at all);
fine only when every question it asks is answered and fine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from monitor.views.source_health import SourceHealth, State


class Status(StrEnum):
    """A verdict per question: ok, worth a look (warn), a problem (bad), or not known (none)."""

    OK = "ok"
    WARN = "warn"
    BAD = "bad"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    reasons: tuple[str, ...] = ()

    @property
    def known_for_a_reason(self) -> bool:
        """Not known although it could be: the project cannot be called fine."""
        return self.status is Status.NONE and bool(self.reasons)


def question_verdict(
    data_status: Status, sources: Sequence[SourceHealth], project: str, missing: str | None = None
) -> Verdict:
    """The verdict of one question from its data's verdict, the health of its sources and, when
    the question is asked but has no data, `missing` (why it has none)."""
    if all(s.state is State.OK for s in sources) and not (missing and data_status is Status.NONE):
        return _PLAIN[data_status]  # the common case, a thousand times a page: nothing to add
    troubled = [s for s in sources if s.troubled]
    never = [s for s in sources if s.state is State.NEVER]
    reasons = [s.reason(project) for s in (*troubled, *never)]
    status = data_status
    if troubled and status in (Status.OK, Status.NONE):
        status = Status.WARN
    elif never and status is Status.OK:
        status = Status.NONE
    if status is Status.NONE and missing and not reasons:
        reasons.append(missing)
    return Verdict(status, tuple(reasons))


_PLAIN = {status: Verdict(status) for status in Status}


def overall(questions: Mapping[str, Verdict], alerts: Status) -> Status:
    """The project's health: worst of its questions and alerts, "not known" before "fine"."""
    found = {v.status for v in questions.values()} | {alerts}
    if Status.BAD in found:
        return Status.BAD
    if Status.WARN in found:
        return Status.WARN
    if any(v.known_for_a_reason for v in questions.values()):
        return Status.NONE
    if any(v.status is Status.OK for v in questions.values()):
        return Status.OK
    return Status.NONE
