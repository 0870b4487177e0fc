"""`idle_gpu`: a project's GPUs busy less than `floor` of the time they were held, over a window.

    rules:
      - name: idle-gpus
        kind: idle_gpu
        params: {floor: 0.2, clear: 0.3, window: 2d, min_gpu_hours: 4}

Efficiency = busy GPU-seconds / held GPU-seconds over the last `window` days (today so far
included), from the `dcgm` sources (else `opencost`), or those named in `sources`. Days a source
could not measure busy time (every sample a DCGM sentinel) are left out of both sums. Below
`min_gpu_hours` held the verdict is clear: too little GPU time to judge. The annotation carries
the money wasted: the GPU spend of the window times (1 - efficiency), in the project's currency.

GPUs no project claims (held by no pod, or without the attribution label: `__unattributed__`)
are judged too, in the project that owns their source (the platform team), as a second verdict
labelled `attributed_project="__unattributed__"`.
"""

from __future__ import annotations

import math
from datetime import timedelta

from pydantic import Field, field_validator, model_validator

from alerts.kinds.base import Evaluation, KindParams, RuleContext, RuleKind
from alerts.kinds.spend.common import money, spend_of
from alerts.model import Condition, Verdict
from monitor.config.types import Duration
from monitor.spend.ledger import SourceDays
from monitor.spend.providers import SPEND
from monitor.spend.series import ATTRIBUTED, UNATTRIBUTED, local_day, zone
from monitor.spend.sources import UnknownSource


class IdleGpuParams(KindParams):
    floor: float = Field(default=0.1, gt=0, le=1, description="fires below this efficiency")
    clear: float | None = Field(default=None, le=1, description="clears at or above this (default: floor)")
    window: Duration = timedelta(days=1)
    min_gpu_hours: float = Field(default=1.0, ge=0)
    sources: list[str] | None = None

    @field_validator("window")
    @classmethod
    def _window(cls, value: timedelta) -> timedelta:
        if value < timedelta(days=1) or value % timedelta(days=1) or value > timedelta(days=90):
            raise ValueError("window must be whole days between 1d and 90d (spend is stored per day)")
        return value

    @model_validator(mode="after")
    def _clear(self) -> IdleGpuParams:
        if self.clear is not None and self.clear < self.floor:
            raise ValueError(f"clear ({self.clear}) must be at least floor ({self.floor})")
        return self


def evaluate(params: IdleGpuParams, ctx: RuleContext) -> Evaluation:
    data = spend_of(ctx)
    if data is None:
        return Evaluation([])
    currency = data.currency
    try:
        refs = data.resolve(params.sources, data.efficiency)
    except UnknownSource as exc:
        return Evaluation([Verdict({}, Condition.NODATA, None, {"message": str(exc)})])
    if not refs:
        return Evaluation(
            [Verdict({}, Condition.NODATA, None, {"message": "no dcgm or opencost source is configured"})]
        )
    verdicts = [_verdict(params, ctx, data.pick(refs), currency, {}, "GPUs")]
    nobody = [data.unattributed[r] for r in refs if r in data.unattributed]
    if nobody:
        labels = {ATTRIBUTED: UNATTRIBUTED}
        verdicts.append(_verdict(params, ctx, nobody, currency, labels, "GPUs no project claims"))
    return Evaluation(verdicts)


def _verdict(
    params: IdleGpuParams,
    ctx: RuleContext,
    sources: list[SourceDays],
    currency: str,
    labels: dict[str, str],
    what: str,
) -> Verdict:
    held = busy = spend = 0.0
    problems: list[str] = []
    for source in sources:
        today = local_day(ctx.now, zone(source.source.timezone))
        window = {today - timedelta(days=i) for i in range(params.window.days)}
        for day, seconds in source.gpu_usage.items():
            if day in window and day in source.gpu_busy:
                held += seconds
                busy += source.gpu_busy[day]
        if source.currency is not None and source.currency != currency:
            problems.append(f"{source.source.ref} reports {source.currency}, the project's currency is {currency}")
        else:
            gpu = source.amounts(None if source.source.kind != "focus" else "billed", "gpu")
            spend += math.fsum(v for d, v in gpu.items() if d in window)
    hours = held / 3600
    efficiency = busy / held if held > 0 else None
    wasted = None if problems or efficiency is None else spend * (1 - efficiency)
    details = {
        "currency": currency,
        "window_days": params.window.days,
        "gpu_hours": round(hours, 2),
        "busy_hours": round(busy / 3600, 2),
        "idle_hours": round((held - busy) / 3600, 2),
        "efficiency": None if efficiency is None else round(efficiency, 4),
        "gpu_spend": round(spend, 2),
        "wasted": None if wasted is None else round(wasted, 2),
        "wasted_text": money(wasted, currency),
        "floor": params.floor,
        "problems": "; ".join(problems),
    }
    if efficiency is None or hours < params.min_gpu_hours:
        details["message"] = f"{hours:.1f} GPU-hours held in the last {params.window.days}d: too few to judge"
        return Verdict(labels, Condition.CLEAR, efficiency, details)
    details["message"] = (
        f"{what} were busy {efficiency:.0%} of the {hours:,.1f} GPU-hours held in the last {params.window.days}d "
        f"({(held - busy) / 3600:,.1f} idle GPU-hours); about {money(wasted, currency)} of "
        f"{money(spend, currency)} GPU spend was wasted"
    )
    clear = params.clear if params.clear is not None else params.floor
    condition = (
        Condition.FIRE if efficiency < params.floor else (Condition.CLEAR if efficiency >= clear else Condition.HOLD)
    )
    return Verdict(labels, condition, efficiency, details)


KIND = RuleKind(
    name="idle_gpu",
    params=IdleGpuParams,
    evaluate=evaluate,
    summary="{{ project.name }}: {{ details.message }}",
    extras=(SPEND,),
    template_vars=(
        "currency",
        "window_days",
        "gpu_hours",
        "busy_hours",
        "idle_hours",
        "efficiency",
        "gpu_spend",
        "wasted",
        "wasted_text",
        "floor",
        "problems",
        "message",
    ),
)
