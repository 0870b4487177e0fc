"""Alerts, acknowledgements and silences."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from alerts.dispatcher import muting
from alerts.model import AlertInstance
from alerts.silences import Silence
from monitor.api.deps import RuntimeDep
from monitor.core.errors import InvalidInput, Issue, NotFound
from monitor.core.matchers import parse_matchers
from monitor.runtime import Runtime
from monitor.store.alerts import AlertStore, SilenceStore, matchers_from_json, matchers_to_json

router = APIRouter(prefix="/api/v1", tags=["alerts"])


class AlertOut(BaseModel):
    id: int
    rule: str
    fingerprint: str
    project: str | None
    state: str
    nodata: bool
    value: float | None
    labels: dict[str, str]
    annotations: dict[str, str]
    likely_cause: str | None
    active_at: datetime | None
    fired_at: datetime | None
    resolved_at: datetime | None
    acked_by: str | None
    acked_at: datetime | None
    ack_comment: str | None
    silenced_by: list[str]
    inhibited_by: list[str]
    suppressed: bool


class AckIn(BaseModel):
    by: str = Field(min_length=1, description="an owner of the alert's project: name, email or Slack handle")
    comment: str = ""


class MatcherIn(BaseModel):
    name: str
    value: str
    isRegex: bool = False
    isEqual: bool = True


class SilenceIn(BaseModel):
    matchers: list[MatcherIn] | list[str] = Field(
        description='Alertmanager-style matcher objects, or strings like severity="critical"'
    )
    startsAt: datetime | None = None
    endsAt: datetime
    createdBy: str = Field(min_length=1)
    comment: str = Field(min_length=1)


class SilenceOut(BaseModel):
    id: str
    status: dict[str, str]
    matchers: list[dict[str, Any]]
    startsAt: datetime
    endsAt: datetime
    createdBy: str
    comment: str


def _out(alert: AlertInstance, mutes: dict[str, Any]) -> AlertOut:
    mute = mutes.get(alert.fingerprint)
    silenced = mute.silenced_by if mute else []
    inhibited = mute.inhibited_by if mute else []
    assert alert.id is not None
    return AlertOut(
        id=alert.id,
        rule=alert.rule,
        fingerprint=alert.fingerprint,
        project=alert.project,
        state=alert.state.value,
        nodata=alert.nodata,
        value=alert.value,
        labels=dict(alert.labels),
        annotations=dict(alert.annotations),
        likely_cause=alert.annotations.get("likely_cause"),
        active_at=alert.active_at,
        fired_at=alert.fired_at,
        resolved_at=alert.resolved_at,
        acked_by=alert.acked_by,
        acked_at=alert.acked_at,
        ack_comment=alert.ack_comment,
        silenced_by=silenced,
        inhibited_by=inhibited,
        suppressed=bool(silenced or inhibited),
    )


def _mutes(runtime: Runtime, alerts: list[AlertInstance]) -> dict[str, Any]:
    now = runtime.clock.now()
    with runtime.store.engine.connect() as conn:
        silences = SilenceStore(runtime.store.engine).current(conn, now)
    return muting(alerts, runtime.config, silences, now)


@router.get("/alerts", summary="Alerts, newest change first", response_model=list[AlertOut])
def list_alerts(
    runtime: RuntimeDep,
    state: Annotated[list[Literal["pending", "firing", "resolved"]] | None, Query()] = None,
    project: str | None = None,
    severity: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[AlertOut]:
    store = AlertStore(runtime.store.engine)
    found = store.list(states=state, project=project, severity=severity, limit=limit)
    mutes = _mutes(runtime, found)
    return [_out(a, mutes) for a in found]


@router.get("/alerts/{alert_id}", summary="One alert", response_model=AlertOut)
def get_alert(alert_id: int, runtime: RuntimeDep) -> AlertOut:
    alert = AlertStore(runtime.store.engine).get(alert_id)
    if alert is None:
        raise NotFound(f"no alert with id {alert_id}")
    return _out(alert, _mutes(runtime, [alert]))


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge a firing alert: no repeats until it changes or resolves")
def ack_alert(alert_id: int, body: AckIn, runtime: RuntimeDep) -> AlertOut:
    store = AlertStore(runtime.store.engine)
    alert = store.get(alert_id)
    if alert is None:
        raise NotFound(f"no alert with id {alert_id}")
    project = runtime.config.project(alert.project or "")
    owners = {v for o in (project.owners if project else []) for v in (o.name, o.email, o.slack) if v}
    if body.by not in owners:
        raise InvalidInput(
            [Issue("by", f"{body.by!r} is not an owner of project {alert.project!r}", field="by")],
            "only the project's owners can acknowledge its alerts",
        )
    if not store.ack(alert_id, body.by, body.comment, runtime.clock.now()):
        raise InvalidInput(
            [Issue("state", f"alert {alert_id} is {alert.state.value}, not firing", field="state")],
            "only a firing alert can be acknowledged",
        )
    return get_alert(alert_id, runtime)


def _silence_out(silence: Silence, now: datetime) -> SilenceOut:
    return SilenceOut(
        id=silence.id,
        status={"state": silence.state(now).value},
        matchers=matchers_to_json(silence.matchers),
        startsAt=silence.starts_at,
        endsAt=silence.ends_at,
        createdBy=silence.created_by,
        comment=silence.comment,
    )


@router.post("/silences", summary="Create a silence (Alertmanager's fields)", response_model=SilenceOut)
def create_silence(body: SilenceIn, runtime: RuntimeDep) -> SilenceOut:
    now = runtime.clock.now()
    try:
        if body.matchers and isinstance(body.matchers[0], str):
            matchers = [m for text in body.matchers for m in parse_matchers(str(text))]
        else:
            matchers = list(matchers_from_json([m.model_dump() for m in body.matchers]))  # type: ignore[union-attr]
    except ValueError as exc:
        raise InvalidInput([Issue("matchers", str(exc), field="matchers")], "invalid matchers") from None
    if not matchers:
        raise InvalidInput(
            [Issue("matchers", "a silence needs at least one matcher", field="matchers")], "invalid silence"
        )
    starts = max(body.startsAt or now, now)
    ends = body.endsAt
    if ends.tzinfo is None or starts.tzinfo is None:
        raise InvalidInput([Issue("endsAt", "times need a time zone (e.g. ...Z)", field="endsAt")], "invalid silence")
    if ends <= starts:
        raise InvalidInput(
            [Issue("endsAt", "endsAt must be after startsAt (and after now)", field="endsAt")], "invalid silence"
        )
    if ends - starts > timedelta(days=366):
        raise InvalidInput([Issue("endsAt", "a silence may last at most a year", field="endsAt")], "invalid silence")
    silence = SilenceStore(runtime.store.engine).create(matchers, starts, ends, body.createdBy, body.comment, now)
    return _silence_out(silence, now)


@router.get("/silences", summary="Silences, including expired ones", response_model=list[SilenceOut])
def list_silences(runtime: RuntimeDep) -> list[SilenceOut]:
    now = runtime.clock.now()
    return [_silence_out(s, now) for s in SilenceStore(runtime.store.engine).all()]


@router.delete(
    "/silences/{silence_id}", summary="Expire a silence (it is kept, not deleted)", response_model=SilenceOut
)
def expire_silence(silence_id: str, runtime: RuntimeDep) -> SilenceOut:
    store = SilenceStore(runtime.store.engine)
    now = runtime.clock.now()
    if store.get(silence_id) is None:
        raise NotFound(f"no silence with id {silence_id}")
    store.expire(silence_id, now)
    found = store.get(silence_id)
    assert found is not None
    return _silence_out(found, now)
