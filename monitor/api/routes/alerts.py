"""Alerts, acknowledgements and silences."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from alerts.dispatcher import muting
from alerts.model import AlertInstance
from alerts.silences import Silence
from alerts.store import AlertStore, SilenceStore, matchers_from_json, matchers_to_json
from monitor.api.auth import PrincipalDep, check_project, deny_message
from monitor.api.deps import RuntimeDep
from monitor.api.schemas import RowId
from monitor.auth.model import Permission, Principal, Role
from monitor.auth.tokens import Forbidden
from monitor.core.errors import InvalidInput, Issue, NotFound
from monitor.core.matchers import Matcher, MatchOp, parse_matchers
from monitor.runtime import Runtime
from monitor.store.changes import Change

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


def _silence_project(silence: Silence | list[Matcher]) -> str | None:
    """The project a silence is limited to (an equality matcher on `project`), if any."""
    matchers = silence.matchers if isinstance(silence, Silence) else silence
    return next((m.value for m in matchers if m.name == "project" and m.op is MatchOp.EQ), None)


def _may_silence(principal: Principal, matchers: Silence | list[Matcher]) -> str | None:
    project = _silence_project(matchers)
    if principal.projects and project is None:
        raise Forbidden(f'{principal.name} may only silence its own projects: add a matcher project="<id>"')
    if project is None:
        check_project_free(principal)
    else:
        check_project(principal, Permission.SILENCE, project)
    return project


def check_project_free(principal: Principal) -> None:
    if not principal.can(Permission.SILENCE):
        raise Forbidden(deny_message(principal, Permission.SILENCE))


@router.get("/alerts", summary="Alerts, newest change first", response_model=list[AlertOut])
def list_alerts(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    state: Annotated[list[Literal["pending", "firing", "resolved"]] | None, Query()] = None,
    project: str | None = None,
    severity: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[AlertOut]:
    store = AlertStore(runtime.store.engine)
    found = [
        a
        for a in store.list(states=state, project=project, severity=severity, limit=limit)
        if a.project is None or principal.sees(a.project)
    ]
    mutes = _mutes(runtime, found)
    return [_out(a, mutes) for a in found]


def _visible_alert(runtime: Runtime, principal: Principal, alert_id: int) -> AlertInstance:
    alert = AlertStore(runtime.store.engine).get(alert_id)
    if alert is None or (alert.project is not None and not principal.sees(alert.project)):
        raise NotFound(f"no alert with id {alert_id}")
    return alert


@router.get("/alerts/{alert_id}", summary="One alert", response_model=AlertOut)
def get_alert(alert_id: RowId, runtime: RuntimeDep, principal: PrincipalDep) -> AlertOut:
    alert = _visible_alert(runtime, principal, alert_id)
    return _out(alert, _mutes(runtime, [alert]))


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge a firing alert: no repeats until it changes or resolves")
def ack_alert(alert_id: RowId, body: AckIn, runtime: RuntimeDep, principal: PrincipalDep) -> AlertOut:
    alert = _visible_alert(runtime, principal, alert_id)
    if alert.project is None:
        check_project_free(principal)
    else:
        check_project(principal, Permission.ACK, alert.project)
    now = runtime.clock.now()
    if not AlertStore(runtime.store.engine).ack(alert_id, principal.name, body.comment, now):
        raise InvalidInput(
            [Issue("state", f"alert {alert_id} is {alert.state.value}, not firing", field="state")],
            "only a firing alert can be acknowledged",
        )
    runtime.store.changes.record(
        Change(
            now,
            principal.name,
            "alert.ack",
            alert.project,
            f"{alert.rule} #{alert_id}",
            {"labels": dict(alert.labels), "comment": body.comment},
        )
    )
    return get_alert(alert_id, runtime, principal)


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
def create_silence(body: SilenceIn, runtime: RuntimeDep, principal: PrincipalDep) -> SilenceOut:
    now = runtime.clock.now()
    try:
        if body.matchers and isinstance(body.matchers[0], str):
            matchers = [m for text in body.matchers for m in parse_matchers(str(text))]
        else:
            matchers = list(matchers_from_json([m.model_dump() for m in body.matchers]))  # type: ignore[union-attr]
    except ValueError as exc:
        raise InvalidInput([Issue("matchers", str(exc), field="matchers")], "invalid matchers") from None
    if not matchers:
        raise _bad_silence("matchers", "a silence needs at least one matcher")
    project = _may_silence(principal, matchers)
    starts = max(body.startsAt or now, now)
    ends = body.endsAt
    if ends.tzinfo is None or starts.tzinfo is None:
        raise _bad_silence("endsAt", "times need a time zone (e.g. ...Z)")
    if ends <= starts:
        raise _bad_silence("endsAt", "endsAt must be after startsAt (and after now)")
    if ends - starts > timedelta(days=366):
        raise _bad_silence("endsAt", "a silence may last at most a year")
    created_by = body.createdBy if principal.role is Role.ADMIN else principal.name
    silence = SilenceStore(runtime.store.engine).create(matchers, starts, ends, created_by, body.comment, now)
    runtime.store.changes.record(
        Change(
            now,
            principal.name,
            "silence.create",
            project,
            silence.id,
            {"matchers": [str(m) for m in matchers], "ends_at": ends.isoformat(), "comment": body.comment},
        )
    )
    return _silence_out(silence, now)


def _bad_silence(field: str, why: str) -> InvalidInput:
    return InvalidInput([Issue(field, why, field=field)], "invalid silence")


@router.get("/silences", summary="Silences, including expired ones", response_model=list[SilenceOut])
def list_silences(runtime: RuntimeDep, principal: PrincipalDep) -> list[SilenceOut]:
    now = runtime.clock.now()
    found = SilenceStore(runtime.store.engine).all()
    if principal.projects:
        found = [s for s in found if (_silence_project(s) or "") in principal.projects]
    return [_silence_out(s, now) for s in found]


@router.delete(
    "/silences/{silence_id}", summary="Expire a silence (it is kept, not deleted)", response_model=SilenceOut
)
def expire_silence(silence_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> SilenceOut:
    store = SilenceStore(runtime.store.engine)
    now = runtime.clock.now()
    silence = store.get(silence_id)
    if silence is None:
        raise NotFound(f"no silence with id {silence_id}")
    project = _may_silence(principal, silence)
    if store.expire(silence_id, now):
        runtime.store.changes.record(Change(now, principal.name, "silence.expire", project, silence_id, {}))
    found = store.get(silence_id)
    assert found is not None
    return _silence_out(found, now)
