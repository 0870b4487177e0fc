"""`dcgm`: GPU time per project from DCGM exporter metrics in Prometheus, priced by a rate card.

    kind: dcgm
    params:
      url: http://prometheus:9090
      metric: DCGM_FI_PROF_GR_ENGINE_ACTIVE   # 0-1 busy ratio (or DCGM_FI_DEV_GPU_UTIL, percent)
      by: [namespace]                         # label(s) naming the project, first non-empty wins
      projects: {ml-churn: churn}             # label value -> project id
      selector: 'cluster="prod"'              # more matchers
      pod_label: ml-project                   # or: a pod label, read from kube-state-metrics
      rates:                                  # per GPU-hour, by modelName (case-insensitive part)
        - {model: H100, hourly: 4.10}
        - {model: A100, hourly: 2.21}
      currency: USD
      resolution: 60s                         # sampling step of the subqueries

Per day, at the day's end (or now), three instant queries over a `[<day>:<resolution>]`
subquery, summed by the project label(s) and the GPU model:

    count_over_time(M[d:r])                         -> samples: GPU-seconds held = count x r
    count_over_time((M >= 0 <= max)[d:r])           -> samples with a real value
    sum_over_time((M >= 0 <= max)[d:r])             -> their sum

With `pod_label`, M is first joined with kube-state-metrics' `kube_pod_labels` on the pod
(`pod_join`, default namespace and pod), so the pod's Kubernetes label names the project; a GPU
whose pod lacks the label (or held by no pod) keeps its own labels and falls back to `by`:

    (M * on(namespace, pod) group_left(label_ml_project) topk by (namespace, pod) (1,
        max by (namespace, pod, label_ml_project) (kube_pod_labels{label_ml_project!=""})))
    or on(namespace, pod) M

`kube_pod_labels` is 1, so the product is M; `max by` folds the copies several kube-state-metrics
replicas expose, and `topk` keeps one value for a pod relabelled within the lookback (two would
make the join fail as many-to-many). kube-state-metrics 2 exports a pod label only when allowed
(`--metric-labels-allowlist=pods=[ml-project]`) and spells it `label_` + the key with every
character outside [a-zA-Z0-9_] as `_`.

Busy GPU-seconds = held x (sum / count of real values). The range filter drops DCGM's
"blank"/"not supported" sentinels (values near 2^31, 2^47 or 2^63), so a GPU that cannot report
its activity is still billed for the time it is held, but does not drag the average to zero.
Spend = held hours x the rate of the GPU's model (an unpriced model fails the run: spend must not
be under-counted silently). Both `Hostname` (releases) and `hostname` (newer exporters) name the
host; either spelling in `by` means both.

Profiling metrics absent: dcgm-exporter drops every `DCGM_FI_PROF_*` series when profiling is not
supported (pre-Volta GPUs, no CAP_SYS_ADMIN, a module not loaded), so those GPUs would be held for
0 seconds. With `fallback: gpu_util` (default) a GPU without the profiling series is read from
`DCGM_FI_DEV_GPU_UTIL` (percent) instead; its busy readings carry `busy_metric=DCGM_FI_DEV_GPU_UTIL`
and the project page says so. `fallback: none` fails the run naming how many GPUs lack it.
GPU_UTIL is not supported on MIG instances: their busy time then stays unknown, never 0.

MIG: dcgm-exporter labels each GPU instance with `GPU_I_PROFILE` (`3g.40gb`) and `GPU_I_ID`, and
`UUID` is the parent GPU's. An instance is priced by its share of the GPU: the larger of its
compute share (`Ng.*`: N of 7 slices, 4 on an A30) and its memory share (`*.Mgb` of the GPU's
memory from modelName, in eighths), so capacity an instance strands is billed to it: two
`3g.40gb` on an H100 80GB hold 4/8 each (3/7 compute, 4/8 memory) and together the whole GPU,
where the compute share alone would leave 1/7 of every hour unbilled. The share multiplies the
GPU-hour rate and the GPU-seconds held; or a rate card line prices the profile's instance-hour
(`{model: H100, profile: 3g.40gb, hourly: 1.90}`). A profile the card lacks and whose slices
cannot be read fails the run naming it.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from collectors.base import CollectContext, CollectResult, Params, SourceError, SourceKind
from collectors.spend.daily import DailyTotals, withdrawn
from collectors.spend.endpoint import DayWindow, EndpointParams, day_checkpoint, days_to_fetch
from monitor.config.types import Duration
from monitor.core.matchers import parse_matchers
from monitor.core.naming import label_name_problem
from monitor.http import request_json, snippet
from monitor.spend.series import BUSY_METRIC, GPU_BUSY, RESERVED_ATTRIBUTIONS, UNATTRIBUTED, Basis, Scope, zone

PROF = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
METRICS = {PROF: 1.0, GPU_UTIL: 100.0}
"""Busy metrics and their full-scale value."""
MIG_PROFILE = "GPU_I_PROFILE"
MIG_INSTANCE = "GPU_I_ID"
_SLICES = re.compile(r"^(\d+)g\.", re.IGNORECASE)
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*gb", re.IGNORECASE)
FOUR_SLICE_MODELS = ("A30",)
"""GPUs whose MIG splits compute into 4 slices, not 7 (MIG User Guide)."""
MODEL_LABELS = ("modelName", "model_name")
HOST_LABELS = ("Hostname", "hostname")
_POD_LABEL_KEY = re.compile(r"^([A-Za-z0-9.-]+/)?[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$")


def pod_label_name(key: str) -> str:
    """The Prometheus label kube-state-metrics gives a Kubernetes pod label."""
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)


class Rate(Params):
    model: str = Field(min_length=1, description="part of the GPU's modelName, e.g. A100")
    profile: str | None = Field(default=None, description="a MIG profile (3g.40gb): the price of one instance-hour")
    hourly: float = Field(ge=0, description="price per GPU-hour (or MIG instance-hour with profile)")


def mig_share(profile: str, model: str) -> float | None:
    """The share of its GPU a MIG instance holds: max(compute slices / 7, memory eighths)."""
    found = _SLICES.match(profile.strip())
    if not found:
        return None
    slices = 4 if any(m.lower() in model.lower() for m in FOUR_SLICE_MODELS) else 7
    share = int(found.group(1)) / slices
    memory, total = _MEMORY.search(profile), _MEMORY.search(model)
    if memory and total and float(total.group(1)) > 0:
        # profile strings round memory oddly (1g.11gb for 1g.12gb): the nearest eighth
        eighths = max(1, round(float(memory.group(1)) / float(total.group(1)) * 8))
        share = max(share, eighths / 8)
    return share if 0 < share <= 1 else None


class DcgmParams(EndpointParams):
    metric: Literal["DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_DEV_GPU_UTIL"] = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
    fallback: Literal["gpu_util", "none"] = Field(
        default="gpu_util",
        description="GPUs without the profiling metric: read DCGM_FI_DEV_GPU_UTIL (labelled), or fail the run",
    )
    by: list[str] = Field(default_factory=lambda: ["namespace"], min_length=1)
    projects: dict[str, str] = Field(default_factory=dict, description="label value -> project id")
    unmapped: Literal["keep", "unattributed"] = "keep"
    selector: str = Field(default="", description='extra matchers: cluster="prod", pod!=""')
    rates: list[Rate] = Field(default_factory=list)
    default_rate: float | None = Field(default=None, ge=0, description="per GPU-hour for models no rate names")
    resolution: Duration = timedelta(seconds=60)
    pod_label: str | None = Field(
        default=None, description="a Kubernetes pod label naming the project, from kube-state-metrics' kube_pod_labels"
    )
    pod_join: list[str] = Field(default_factory=lambda: ["namespace", "pod"], min_length=1)

    @field_validator("pod_label")
    @classmethod
    def _pod_label(cls, value: str | None) -> str | None:
        if value is not None and not _POD_LABEL_KEY.match(value):
            raise ValueError(
                f"expected a Kubernetes label key such as ml-project or example.com/project, got {value!r}"
            )
        return value

    @field_validator("pod_join")
    @classmethod
    def _pod_join(cls, value: list[str]) -> list[str]:
        for label in value:
            if label_name_problem(label):
                raise ValueError(f"expected label names, got {label!r}")
        return value

    @field_validator("by")
    @classmethod
    def _by(cls, value: list[str]) -> list[str]:
        for label in value:
            if label_name_problem(label) and label not in HOST_LABELS:
                raise ValueError(f"expected label names, got {label!r}")
        return value

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        if value.strip():
            parse_matchers(value)
        return value.strip().strip("{}")

    @field_validator("projects")
    @classmethod
    def _projects(cls, value: dict[str, str]) -> dict[str, str]:
        for key, project in value.items():
            if not project or project in RESERVED_ATTRIBUTIONS:
                raise ValueError(f"projects[{key!r}]: expected a project id, got {project!r}")
        return value

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1) or value % timedelta(seconds=1):
            raise ValueError("resolution must be whole seconds, at least 1s")
        return value

    @property
    def pod_label_name(self) -> str | None:
        return pod_label_name(self.pod_label) if self.pod_label else None

    @property
    def group_labels(self) -> list[str]:
        labels: list[str] = [self.pod_label_name] if self.pod_label_name else []
        for label in self.by:
            for name in HOST_LABELS if label in HOST_LABELS else (label,):
                if name not in labels:
                    labels.append(name)
        return [*labels, *MODEL_LABELS, MIG_PROFILE]


class DcgmCollector:
    def __init__(self, params: DcgmParams) -> None:
        self.params = params
        self.tz = zone(params.timezone)

    def _series(self, metric: str) -> str:
        p = self.params
        series = f"{metric}{{{p.selector}}}" if p.selector else metric
        if p.pod_label_name:
            on, label = ", ".join(p.pod_join), p.pod_label_name
            series = (
                f"(({series} * on({on}) group_left({label}) topk by ({on}) (1, max by ({on}, {label}) "
                f'(kube_pod_labels{{{label}!=""}}))) or on({on}) {series})'
            )
        return series

    def queries(self, window: DayWindow) -> dict[str, str]:
        """held, valid and busy of the configured metric; with the profiling metric, the same
        three of GPU_UTIL for the GPUs (and MIG instances) that have no profiling series."""
        p = self.params
        span = max(1, int((window.end - window.start).total_seconds()))
        step = int(p.resolution.total_seconds())
        by = ", ".join(p.group_labels)
        sources = {"": (self._series(p.metric), METRICS[p.metric])}
        if p.metric == PROF:
            plain = f"{PROF}{{{p.selector}}}" if p.selector else PROF
            sources["fallback_"] = (f"({self._series(GPU_UTIL)} unless on(UUID, {MIG_INSTANCE}) {plain})", 100.0)
        out = {}
        for prefix, (series, scale) in sources.items():
            valid = f"({series} >= 0 <= {scale:g})"
            out[prefix + "held"] = f"sum by ({by}) (count_over_time({series}[{span}s:{step}s]))"
            out[prefix + "valid"] = f"sum by ({by}) (count_over_time({valid}[{span}s:{step}s]))"
            out[prefix + "busy"] = f"sum by ({by}) (sum_over_time({valid}[{span}s:{step}s]))"
        return out

    def project_of(self, labels: Mapping[str, str]) -> str:
        pod = self.params.pod_label_name
        for label in [pod, *self.params.by] if pod else self.params.by:
            names = HOST_LABELS if label in HOST_LABELS else (label,)
            value = next((labels[n] for n in names if labels.get(n)), "")
            if value:
                if value in self.params.projects:
                    return self.params.projects[value]
                return value if self.params.unmapped == "keep" else UNATTRIBUTED
        return UNATTRIBUTED

    def rate_of(self, model: str, profile: str = "") -> float:
        """Per hour of what the series holds: a GPU, or a MIG instance of `profile`."""
        lowered = model.lower()
        if profile:
            for rate in self.params.rates:
                if rate.profile and rate.profile.lower() == profile.lower() and rate.model.lower() in lowered:
                    return rate.hourly
            share = mig_share(profile, model)
            if share is None:
                priced = ", ".join(f"{r.model} {r.profile}" for r in self.params.rates if r.profile) or "none"
                raise SourceError(
                    f"MIG profile {profile!r} of {model or '(no modelName label)'!r} is not in params.rates (MIG "
                    f"profiles priced: {priced}) and its compute slices cannot be read from it: add "
                    "{model: ..., profile: ..., hourly: ...}"
                )
            return self.rate_of(model) * share
        for rate in self.params.rates:
            if rate.profile is None and rate.model.lower() in lowered:
                return rate.hourly
        if self.params.default_rate is not None:
            return self.params.default_rate
        known = ", ".join(r.model for r in self.params.rates) or "none"
        raise SourceError(
            f"GPU model {model or '(no modelName label)'!r} has no rate in params.rates (known: {known}) and no "
            "default_rate: add one, or its spend would be missing"
        )

    def add_day(self, totals: DailyTotals, window: DayWindow, answers: Mapping[str, list[dict[str, Any]]]) -> None:
        step = self.params.resolution.total_seconds()
        groups: dict[tuple[str, str, str, bool], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for name, result in answers.items():
            fallback = name.startswith("fallback_")
            for item in result:
                labels: dict[str, str] = item.get("metric") or {}
                value = _sample_value(item, name)
                model = next((labels[m] for m in MODEL_LABELS if labels.get(m)), "")
                key = (self.project_of(labels), model, labels.get(MIG_PROFILE, ""), fallback)
                groups[key][name.removeprefix("fallback_")] += value
        lacking = sum(1 for (_, _, _, fallback), m in groups.items() if fallback and m.get("held"))
        if lacking and self.params.fallback == "none":
            raise SourceError(
                f"{lacking} GPU group{'s' if lacking > 1 else ''} on {window.day} report {GPU_UTIL} but not "
                f"{PROF} (profiling unsupported or not permitted on the exporter): their held time would be "
                "missing; set fallback: gpu_util, or enable profiling"
            )
        for (project, model, profile, fallback), measures in groups.items():
            held = measures.get("held", 0.0) * step
            if held <= 0:
                continue
            scale = 100.0 if fallback else METRICS[self.params.metric]
            share = (mig_share(profile, model) or 0.0) if profile else 1.0
            busy = None
            # GPU_UTIL does not measure a MIG instance: its activity stays unknown, not idle
            if measures.get("valid", 0.0) > 0 and not (fallback and profile):
                mean = measures.get("busy", 0.0) / measures["valid"] / scale
                busy = held * share * min(1.0, max(0.0, mean))
            rate = self.rate_of(model, profile)
            usage = held * share if profile else held
            if fallback:
                totals.add_gpu(project, window.day, usage, None)
                if busy is not None:
                    totals.add_labelled(GPU_BUSY, project, window.day, busy, {BUSY_METRIC: GPU_UTIL})
            else:
                totals.add_gpu(project, window.day, usage, busy)
            totals.add_spend(project, Basis.ESTIMATED, Scope.GPU, window.day, held / 3600 * rate)

    def collect(self, ctx: CollectContext) -> CollectResult:
        p = self.params
        windows = days_to_fetch(ctx.now, self.tz, ctx.checkpoint, p.backfill, p.refresh)
        totals = DailyTotals(p.currency, self.tz)
        with p.client(ctx) as client:
            for window in windows:
                answers = {}
                for name, query in self.queries(window).items():
                    answers[name] = _vector(
                        request_json(
                            client,
                            "GET",
                            p.url + "/api/v1/query",
                            params={"query": query, "time": f"{window.end.timestamp():.3f}"},
                        ),
                        f"{p.url}/api/v1/query?query={query}",
                    )
                self.add_day(totals, window, answers)
        days = {w.day for w in windows}
        readings = totals.readings(ctx.source, days)
        readings += withdrawn(ctx.reader, ctx.project, ctx.source, totals.metrics, days, self.tz, readings)
        return CollectResult(
            readings=readings, checkpoint=day_checkpoint(windows, ctx.checkpoint, ctx.now, currency=p.currency)
        )


def _vector(document: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(document, dict) or document.get("status") != "success":
        error = document.get("error") if isinstance(document, dict) else None
        raise SourceError(f"{where}: Prometheus answered {snippet(str(error or document))}")
    data = document.get("data") or {}
    if data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
        raise SourceError(f"{where}: expected an instant vector, got {snippet(str(data))}")
    result: list[dict[str, Any]] = data["result"]
    return result


def _sample_value(item: dict[str, Any], name: str) -> float:
    try:
        value = float(item["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        raise SourceError(
            f"query {name}: expected [time, value] in each result, got {snippet(str(item), 80)}"
        ) from None
    return value if math.isfinite(value) else 0.0


KIND = SourceKind(
    "dcgm",
    DcgmParams,
    DcgmCollector,
    "DCGM GPU busy time per project from Prometheus, priced by a per-model rate card",
)
