"""`mlflow`: model quality and delivery pace from an MLflow tracking server (REST API, no mlflow package).

    params:
      url: http://mlflow.internal:5000
      basic_auth: {username_env: MLFLOW_USER, password_env: MLFLOW_PASSWORD}   # optional; without it
                  # MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD are used when both are set
      models:                                   # registered models, through an alias or a stage
        - name: churn-classifier
          alias: production                     # or  stage: Production  (default: alias production)
          metrics:
            - {key: eval_accuracy, metric: accuracy, examples_key: eval_examples}
            - {key: val_loss, metric: loss, history: true}   # every logged point, not only the latest
          promoted_at_tag: promoted_at          # optional model-version tag holding the promotion time
      searches:                                 # runs of an experiment, by filter and order
        - experiment: churn-nightly-eval
          filter: "attributes.status = 'FINISHED' and tags.kind = 'eval'"
          order_by: ["attributes.start_time DESC"]
          max_results: 5
          metrics: [{key: accuracy}]
          label_tags: {model: model_name}        # series label <- run tag
      pace_window: 30d

A registered model's readings carry the labels `model` and `alias` (or `stage`); the metric comes
from the version's run (`runs/get`, latest value per key) or, for MLflow 3 models whose metrics are
logged on the logged model, from `logged-models/<id>`. With `pace` (default on) the source also
writes `model_version`, `model_promotion_age_seconds`, `model_promotions{window}` and
`model_promotion_lead_time_seconds`, and records an event `model <name> version <old> -> <new>`
whenever the alias moves (see collectors/quality/pace.py for how moves are timed).

MLflow's errors (unknown model, alias, run or experiment; a bad filter) fail the source with
MLflow's own message; so does an empty search, a missing metric key, or a NaN / infinite value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field, field_validator, model_validator

from collectors.base import (
    CollectContext,
    CollectResult,
    EventDraft,
    Params,
    Reading,
    SourceError,
    SourceKind,
    env_value,
)
from collectors.quality.mlflow_api import MlflowApi, metric_value, model_id_of
from collectors.quality.pace import AliasHistory, Promotion, observe
from monitor.config.types import Duration, LabelSet, MetricName
from monitor.core.durations import format_duration
from monitor.core.naming import label_name_problem, metric_name_problem
from monitor.core.types import ms_from_datetime
from monitor.quality.names import EXAMPLES_SUFFIX, LEAD_TIME, MODEL_VERSION, PROMOTION_AGE, PROMOTIONS

MAX_SUBJECT = 200


class BasicAuth(Params):
    username_env: str
    password_env: str


class MetricSpec(Params):
    key: str = Field(min_length=1, description="the MLflow metric key")
    metric: MetricName | None = Field(default=None, description="the mlmon metric (default: the key)")
    examples_key: str | None = Field(default=None, description="MLflow key holding the number of examples")
    history: bool = Field(default=False, description="read every logged point, not only the latest")

    @model_validator(mode="after")
    def _name(self) -> MetricSpec:
        if self.metric is None:
            problem = metric_name_problem(self.key)
            if problem:
                raise ValueError(f"MLflow key {self.key!r} cannot be an mlmon metric name ({problem}); set metric")
        return self

    @property
    def name(self) -> str:
        return self.metric or self.key


class ModelSpec(Params):
    name: str = Field(min_length=1)
    alias: str | None = None
    stage: str | None = None
    metrics: list[MetricSpec] = Field(default_factory=list)
    labels: LabelSet = Field(default_factory=dict)
    pace: bool = True
    promoted_at_tag: str | None = None

    @model_validator(mode="after")
    def _alias_or_stage(self) -> ModelSpec:
        if self.alias is not None and self.stage is not None:
            raise ValueError("give alias or stage, not both")
        clash = {"model", "alias", "stage"} & set(self.labels)
        if clash:
            raise ValueError(f"labels {sorted(clash)} are set by the source")
        return self

    @property
    def pointer(self) -> tuple[str, str]:
        """("alias", "production") or ("stage", "Production")."""
        if self.stage is not None:
            return "stage", self.stage
        return "alias", self.alias or "production"


class SearchSpec(Params):
    experiment: str | None = Field(default=None, description="experiment name")
    experiment_id: str | None = None
    filter: str = ""
    order_by: list[str] = Field(default_factory=lambda: ["attributes.start_time DESC"])
    max_results: int = Field(default=1, ge=1, le=50_000, description="runs to read")
    page_size: int = Field(default=1000, ge=1, le=50_000, description="runs per request")
    metrics: list[MetricSpec] = Field(min_length=1)
    labels: LabelSet = Field(default_factory=dict)
    label_tags: dict[str, str] = Field(default_factory=dict, description="series label <- run tag")
    allow_empty: bool = False

    @field_validator("label_tags")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            problem = label_name_problem(name)
            if problem:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _experiment(self) -> SearchSpec:
        if (self.experiment is None) == (self.experiment_id is None):
            raise ValueError("give exactly one of experiment (a name) or experiment_id")
        return self

    @property
    def what(self) -> str:
        return f"experiment {self.experiment!r}" if self.experiment else f"experiment id {self.experiment_id}"


class MlflowParams(Params):
    url: str
    basic_auth: BasicAuth | None = None
    token_env: str | None = Field(default=None, description="environment variable holding a bearer token")
    verify_tls: bool = True
    ca_file: str | None = None
    models: list[ModelSpec] = Field(default_factory=list)
    searches: list[SearchSpec] = Field(default_factory=list)
    pace_window: Duration = timedelta(days=30)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _something(self) -> MlflowParams:
        if not self.models and not self.searches:
            raise ValueError("configure at least one of models or searches")
        return self


class MlflowCollector:
    def __init__(self, params: MlflowParams) -> None:
        self.params = params

    def collect(self, ctx: CollectContext) -> CollectResult:
        p = self.params
        headers = {}
        if p.token_env:
            headers["Authorization"] = "Bearer " + env_value(ctx.env, p.token_env, "MLflow token")
        verify: bool | str = p.ca_file if (p.verify_tls and p.ca_file) else p.verify_tls
        run = _Run(ctx, p)
        with ctx.http.client(verify=verify, headers=headers, auth=_auth(p, ctx.env), base_url=p.url) as client:
            api = MlflowApi(client)
            for model in p.models:
                run.model(api, model)
            for search in p.searches:
                run.search(api, search)
        return CollectResult(readings=run.readings, events=run.events, checkpoint=run.checkpoint())


def _auth(p: MlflowParams, env: Mapping[str, str]) -> tuple[str, str] | None:
    if p.basic_auth is not None:
        return (
            env_value(env, p.basic_auth.username_env, "MLflow user"),
            env_value(env, p.basic_auth.password_env, "MLflow password"),
        )
    user, password = env.get("MLFLOW_TRACKING_USERNAME"), env.get("MLFLOW_TRACKING_PASSWORD")
    return (user, password) if user and password else None


class _Run:
    """The state of one collection: readings, events and the next checkpoint."""

    def __init__(self, ctx: CollectContext, params: MlflowParams) -> None:
        self.ctx = ctx
        self.params = params
        self.now_ms = ms_from_datetime(ctx.now)
        self.readings: list[Reading] = []
        self.events: list[EventDraft] = []
        saved = ctx.checkpoint
        self.old_aliases: Mapping[str, Any] = saved.get("aliases") or {}
        self.old_history: Mapping[str, Any] = saved.get("history") or {}
        self.aliases: dict[str, Any] = {}
        self.history: dict[str, int] = {}

    def checkpoint(self) -> dict[str, Any]:
        return {"aliases": self.aliases, "history": self.history}

    # --- registered models ----------------------------------------------------------------------

    def model(self, api: MlflowApi, spec: ModelSpec) -> None:
        kind, pointer = spec.pointer
        if kind == "alias":
            version = api.version_by_alias(spec.name, pointer)
        else:
            version = api.version_by_stage(spec.name, pointer)
        number = str(version.get("version", ""))
        labels = {**spec.labels, "model": spec.name, kind: pointer}
        where = f"version {number} of {spec.name!r} ({kind} {pointer})"
        run_id = version.get("run_id") or None
        run = api.run(run_id) if run_id and (spec.metrics or spec.pace) else None
        # The alias's history first: the served version's values are stamped no earlier than its
        # promotion, so after a rollback (v3 -> v2) the series shows v2's value at once instead of
        # v3's staying newest because v2's was logged earlier.
        served_since = self._served(spec, version, run, kind, pointer)
        if spec.metrics:
            if run is None:
                raise SourceError(f"{where} has no run_id, so its metrics cannot be read")
            logged: dict[str, Any] | None = None
            model_id = model_id_of(version)
            for metric in spec.metrics:
                found = _latest(run, metric.key)
                if found is None and model_id is not None:
                    logged = logged if logged is not None else api.logged_model(model_id)
                    found = _latest_logged(logged, metric.key)
                if found is None:
                    extra = f" or its logged model {model_id}" if model_id else ""
                    raise SourceError(f"metric key {metric.key!r} not found in run {run_id} of {where}{extra}")
                self._metric(api, metric, run, found, labels, where, logged, served_since)

    def _served(
        self,
        spec: ModelSpec,
        version: Mapping[str, Any],
        run: Mapping[str, Any] | None,
        kind: str,
        pointer: str,
    ) -> int:
        """Record the alias's history (and with `pace`, its series and events); return since when
        the current version has been served (epoch ms)."""
        number = str(version.get("version", ""))
        key = f"{spec.name}|{kind}|{pointer}"
        saved = self.old_aliases.get(key)
        previous = AliasHistory.from_json(saved) if saved else None
        tags = {t.get("key"): t.get("value") for t in version.get("tags") or []}
        tag = str(tags[spec.promoted_at_tag]) if spec.promoted_at_tag and tags.get(spec.promoted_at_tag) else None
        updated = version.get("last_updated_timestamp")
        run_start = (run or {}).get("info", {}).get("start_time")
        window_ms = int(self.params.pace_window.total_seconds() * 1000)
        history, moved = observe(
            previous, number, tag, int(updated) if updated else None, int(run_start) if run_start else None,
            self.now_ms, window_ms, update_is_move=kind == "stage",
        )  # fmt: skip
        self.aliases[key] = history.to_json()
        if spec.pace:
            self._pace(spec, number, history, moved, previous, kind, pointer)
        return history.current.at_ms

    def _pace(
        self,
        spec: ModelSpec,
        number: str,
        history: AliasHistory,
        moved: Promotion | None,
        previous: AliasHistory | None,
        kind: str,
        pointer: str,
    ) -> None:
        window_ms = int(self.params.pace_window.total_seconds() * 1000)
        pace_labels = {"model": spec.name, kind: pointer}
        try:
            version_number = float(number)
        except ValueError:
            raise SourceError(f"model {spec.name!r}: version {number!r} is not a number") from None
        self.readings.append(Reading(MODEL_VERSION, version_number, pace_labels))
        if moved is not None or previous is None:
            # Also at the promotion time, so a version baseline finds the version in force at the
            # time the served version's values are stamped with.
            self.readings.append(Reading(MODEL_VERSION, version_number, pace_labels, _dt(history.current.at_ms)))
        self.readings.append(Reading(PROMOTION_AGE, history.age_seconds(self.now_ms), pace_labels))
        window = _window_label(self.params.pace_window)
        count = history.promotions_in(window_ms, self.now_ms)
        self.readings.append(Reading(PROMOTIONS, float(count), {**pace_labels, "window": window}))
        if history.current.lead_ms is not None:
            self.readings.append(Reading(LEAD_TIME, history.current.lead_ms / 1000, pace_labels))
        if moved is not None and previous is not None:
            old = previous.current.version
            subject = f"model {spec.name} version"[:MAX_SUBJECT]
            stale = (
                f"; its {spec.promoted_at_tag} tag predates the previous poll, so the poll times it"
                if moved.how == "observed_stale_tag"
                else ""
            )
            self.events.append(
                EventDraft(
                    kind="model_version",
                    subject=subject,
                    old=old,
                    new=number,
                    message=f"model {spec.name} version {old} -> {number} ({kind} {pointer}){stale}",
                    ts=datetime.fromtimestamp(moved.at_ms / 1000, UTC),
                    labels={"model": spec.name, kind: pointer, "how": moved.how},
                )
            )

    # --- searches -------------------------------------------------------------------------------

    def search(self, api: MlflowApi, spec: SearchSpec) -> None:
        experiment_id = spec.experiment_id or api.experiment_id(str(spec.experiment))
        runs = api.search_runs([experiment_id], spec.filter, spec.order_by, spec.max_results, spec.page_size)
        if not runs:
            if spec.allow_empty:
                return
            raise SourceError(f"run search in {spec.what} matched no runs (filter {spec.filter!r})")
        for run in runs:
            run_id = run.get("info", {}).get("run_id", "?")
            tags = {t.get("key"): t.get("value") for t in run.get("data", {}).get("tags") or []}
            labels = dict(spec.labels)
            for label, tag in spec.label_tags.items():
                if tag not in tags:
                    raise SourceError(f"run {run_id} in {spec.what} has no tag {tag!r} (for label {label!r})")
                labels[label] = str(tags[tag])
            where = f"run {run_id} in {spec.what}"
            for metric in spec.metrics:
                found = _latest(run, metric.key)
                if found is None:
                    raise SourceError(f"metric key {metric.key!r} not found in {where}")
                self._metric(api, metric, run, found, labels, where, None)

    # --- metrics --------------------------------------------------------------------------------

    def _metric(
        self,
        api: MlflowApi,
        spec: MetricSpec,
        run: Mapping[str, Any],
        latest: Mapping[str, Any],
        labels: dict[str, str],
        where: str,
        logged: Mapping[str, Any] | None,
        served_since: int | None = None,
    ) -> None:
        run_id = str(run.get("info", {}).get("run_id", ""))
        what = f"metric {spec.key!r} of {where}"
        value = metric_value(latest.get("value"), what)
        ts_ms = int(latest.get("timestamp") or self.now_ms)
        if served_since is not None and not spec.history:
            ts_ms = max(ts_ms, min(served_since, self.now_ms))
        if spec.history:
            key = f"{run_id}|{spec.key}"
            last_seen = int(self.old_history.get(key, -1))
            newest = last_seen
            for point in api.history(run_id, spec.key):
                point_ts = int(point.get("timestamp") or 0)
                if point_ts > last_seen:
                    self.readings.append(
                        Reading(spec.name, metric_value(point.get("value"), what), labels, _dt(point_ts))
                    )
                    newest = max(newest, point_ts)
            self.history[key] = max(newest, ts_ms)
        else:
            self.readings.append(Reading(spec.name, value, labels, _dt(ts_ms)))
        if spec.examples_key is not None:
            found = _latest(run, spec.examples_key)
            if found is None and logged is not None:
                found = _latest_logged(logged, spec.examples_key)
            if found is None:
                raise SourceError(f"examples key {spec.examples_key!r} not found in {where}")
            n = metric_value(found.get("value"), f"metric {spec.examples_key!r} of {where}")
            if n <= 0:
                raise SourceError(
                    f"metric {spec.examples_key!r} of {where} is {n:g}; a number of examples must be positive"
                )
            # Same timestamp as the value, so the `drop` rule pairs them.
            self.readings.append(Reading(spec.name + EXAMPLES_SUFFIX, n, labels, _dt(ts_ms)))


def _latest(run: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    for metric in run.get("data", {}).get("metrics") or []:
        if metric.get("key") == key:
            found: Mapping[str, Any] = metric
            return found
    return None


def _latest_logged(model: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    """The latest value of `key` among a logged model's metrics (largest step, then timestamp)."""
    matching = [m for m in model.get("data", {}).get("metrics") or [] if m.get("key") == key]
    if not matching:
        return None
    best: Mapping[str, Any] = max(matching, key=lambda m: (int(m.get("step") or 0), int(m.get("timestamp") or 0)))
    return best


def _window_label(window: timedelta) -> str:
    """ "30d" rather than format_duration's "4w2d": the window of a pace series, in whole days if it is."""
    seconds = int(window.total_seconds())
    return f"{seconds // 86400}d" if seconds % 86400 == 0 else format_duration(window)


def _dt(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, UTC)


KIND = SourceKind(
    "mlflow",
    MlflowParams,
    MlflowCollector,
    "registered-model metrics, run searches and delivery pace from an MLflow tracking server",
)
