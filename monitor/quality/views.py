"""Read models of the quality family for the API and the CLI: series with their baselines, and the
delivery pace of registered models. Reads the store only; the HTTP layer stays thin."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.core.matchers import Matcher, Selector
from monitor.core.types import SeriesKey, datetime_from_ms, labels_text
from monitor.quality.names import BASELINE_SUFFIX, EXAMPLES_SUFFIX, LEAD_TIME, MODEL_VERSION, PROMOTION_AGE, PROMOTIONS
from monitor.store.store import Store


@dataclass(frozen=True)
class Baseline:
    value: float
    at: str
    n: float | None
    how: Mapping[str, Any] = field(default_factory=dict)
    """How the `baseline` source computed it (method, period, points, aggregation), when known."""


@dataclass(frozen=True)
class QualitySeries:
    key: SeriesKey
    latest: tuple[str, float] | None
    examples: float | None
    baseline: Baseline | None

    @property
    def drop(self) -> float | None:
        if self.latest is None or self.baseline is None:
            return None
        return self.baseline.value - self.latest[1]


def series_with_baselines(store: Store, selector: Selector, limit: int = 10_000) -> list[QualitySeries]:
    """Each matching series with its newest value, its n, and its baseline with how it was made."""
    rows = [r for r in store.samples.find_series(selector) if not r.key.metric.endswith(BASELINE_SUFFIX)][:limit]
    evidence = _baseline_evidence(store, {r.key.project for r in rows})
    out = []
    for row in rows:
        key = row.key
        latest = store.samples.latest(key)
        examples = store.samples.latest(SeriesKey(key.project, key.metric + EXAMPLES_SUFFIX, key.labels))
        base_key = SeriesKey(key.project, key.metric + BASELINE_SUFFIX, key.labels)
        base = store.samples.latest(base_key)
        baseline = None
        if base is not None:
            base_n = store.samples.latest(SeriesKey(key.project, base_key.metric + EXAMPLES_SUFFIX, key.labels))
            how = evidence.get((key.project, f"{base_key.metric}|{labels_text(key.labels)}"), {})
            at = datetime_from_ms(base.ts_ms).isoformat()
            baseline = Baseline(base.value, at, base_n.value if base_n else None, how)
        out.append(
            QualitySeries(
                key,
                (datetime_from_ms(latest.ts_ms).isoformat(), latest.value) if latest else None,
                examples.value if examples and latest and examples.ts_ms == latest.ts_ms else None,
                baseline,
            )
        )
    return out


def _baseline_evidence(store: Store, projects: set[str]) -> dict[tuple[str, str], Mapping[str, Any]]:
    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    for status in store.sources.statuses():
        if status.kind != "baseline" or status.project not in projects or not status.checkpoint:
            continue
        for key, how in (status.checkpoint.get("baselines") or {}).items():
            found[(status.project, key)] = {"source": status.source, **how}
    return found


def model_pace(store: Store, project: str) -> list[dict[str, Any]]:
    """Per registered model and alias: version, promotion age, promotions in the window, lead time,
    the recent promotions the `mlflow` source saw, and the model-version events."""
    models: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for metric, field_name in ((MODEL_VERSION, "version"), (PROMOTION_AGE, "promotion_age_seconds"),
                               (PROMOTIONS, "promotions"), (LEAD_TIME, "lead_time_seconds")):  # fmt: skip
        for series in store.samples.latest_many(Selector(metric, (Matcher.of("project", "=", project),))):
            labels = {k: v for k, v in series.key.labels if k != "window"}
            entry = models.setdefault(tuple(sorted(labels.items())), {"labels": labels})
            if series.points:
                entry[field_name] = series.points[-1].value
                entry["as_of"] = datetime_from_ms(series.points[-1].ts_ms).isoformat()
                if metric == PROMOTIONS:
                    entry["window"] = dict(series.key.labels).get("window")
    histories = _pace_histories(store, project)
    events = store.events.events(project=project, kinds=["model_version"], limit=200)
    for entry in models.values():
        labels = entry["labels"]
        model = labels.get("model", "")
        pointer = ("alias", labels["alias"]) if "alias" in labels else ("stage", labels.get("stage", ""))
        history = histories.get(f"{model}|{pointer[0]}|{pointer[1]}")
        if history is not None:
            entry["history"] = history
        entry["events"] = [
            {"at": datetime_from_ms(e.ts_ms).isoformat(), "old": e.old, "new": e.new, "message": e.describe()}
            for e in events
            if e.labels.get("model") == model and e.labels.get(pointer[0]) == pointer[1]
        ]
    return list(models.values())


def _pace_histories(store: Store, project: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for status in store.sources.statuses(project):
        if status.kind == "mlflow" and status.checkpoint:
            found.update(status.checkpoint.get("aliases") or {})
    return found
