"""`stale`: an installed package is too far behind its newest release.

    params: {package: torch, max_minors_behind: 2, max_behind: 90d, unsupported_minor: false, yanked: true}

Fires when the installed version is more than `max_minors_behind` minor releases behind, when the
first newer release came out more than `max_behind` ago, when (`unsupported_minor`) its minor line
no longer gets patch releases (PyTorch patches only its latest minor), or (`yanked`) when the
installed version was yanked. With several versions installed, the oldest one decides.
"""

from __future__ import annotations

from packaging.version import Version
from pydantic import Field, field_validator, model_validator

from alerts.kinds.base import Evaluation, KindParams, RuleContext, RuleKind
from alerts.kinds.stack.common import promql_selector, view, with_clears
from alerts.model import Condition, Verdict
from monitor.config.types import Duration
from monitor.stack.providers import STACK
from monitor.stack.versions import canonical_name, public_version


class StaleParams(KindParams):
    package: str = "torch"
    max_minors_behind: int | None = Field(default=None, ge=0)
    max_behind: Duration | None = None
    unsupported_minor: bool = False
    yanked: bool = True

    @field_validator("package")
    @classmethod
    def _name(cls, value: str) -> str:
        return canonical_name(value)

    @model_validator(mode="after")
    def _criteria(self) -> StaleParams:
        if (
            self.max_minors_behind is None
            and self.max_behind is None
            and not self.unsupported_minor
            and not self.yanked
        ):
            raise ValueError("give at least one of max_minors_behind, max_behind, unsupported_minor, yanked")
        return self


def evaluate(params: StaleParams, ctx: RuleContext) -> Evaluation:
    data = view(ctx)
    labels = {"package": params.package}
    if data is None:
        return Evaluation([Verdict(labels, Condition.NODATA, None, {"reason": "no stack inventory reconciled yet"})])
    entries = [s for s in data.staleness if s.package == params.package]
    if not entries:
        if data.tracked.get(params.package):
            reason = f"no release history of {params.package} (is it in stack.index.packages, is the index reachable?)"
            return Evaluation([Verdict(labels, Condition.NODATA, None, {"reason": reason})])
        return with_clears([], ctx)
    worst = min(entries, key=lambda s: public_version(s.installed) or Version("0"))
    reasons: list[str] = []
    if params.max_minors_behind is not None and worst.minors_behind > params.max_minors_behind:
        reasons.append(f"{worst.minors_behind} minor releases behind {worst.latest}")
    behind = worst.behind_seconds(ctx.now)
    if params.max_behind is not None and worst.behind_since is not None and behind > params.max_behind.total_seconds():
        reasons.append(f"{worst.first_newer} has been out since {worst.behind_since:%Y-%m-%d}")
    if params.unsupported_minor and worst.minor_supported is False:
        reasons.append("its minor line gets no more patch releases")
    if params.yanked and worst.installed_yanked:
        reasons.append(f"the installed version was yanked ({worst.yanked_reason or 'no reason given'})")
    details = {
        "installed": worst.installed,
        "latest": worst.latest or "",
        "minors_behind": worst.minors_behind,
        "behind_seconds": behind,
        "first_newer": worst.first_newer or "",
        "minor_supported": worst.minor_supported,
        "latest_in_minor": worst.latest_in_minor or "",
        "reason": "; ".join(reasons),
    }
    condition = Condition.FIRE if reasons else Condition.CLEAR
    return with_clears([Verdict(labels, condition, float(worst.minors_behind), details)], ctx)


def promql(params: StaleParams, project: str) -> str:
    """Each enabled criterion over the exported staleness gauges, per (project, package); the value
    is the most minor releases any installed version is behind (mlmon judges the oldest version)."""

    def worst(metric: str, how: str = "max") -> str:
        series = promql_selector(metric, project, f'package="{params.package}"')
        return f"{how} by (project, package) ({series})"

    criteria: list[str] = []
    if params.max_minors_behind is not None:
        criteria.append(f"{worst('mlmon_stack_minors_behind')} > {params.max_minors_behind}")
    if params.max_behind is not None:
        criteria.append(f"{worst('mlmon_stack_newer_release_age_seconds')} > {params.max_behind.total_seconds()!r}")
    if params.unsupported_minor:
        criteria.append(f"{worst('mlmon_stack_minor_supported', 'min')} == 0")
    if params.yanked:
        criteria.append(f"{worst('mlmon_stack_installed_yanked')} == 1")
    return f"{worst('mlmon_stack_minors_behind')} and ({' or '.join(criteria)})"


KIND = RuleKind(
    name="stale",
    params=StaleParams,
    evaluate=evaluate,
    summary="{{ labels.package }} {{ details.installed }} is stale: {{ details.reason }}",
    extras=(STACK,),
    uses_memory=True,
    template_vars=(
        "installed",
        "latest",
        "minors_behind",
        "behind_seconds",
        "first_newer",
        "minor_supported",
        "latest_in_minor",
        "reason",
    ),
    promql=promql,
)
