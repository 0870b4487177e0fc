"""Project settings owners manage through the API: the budget, rules and ignores of a project.

A change is applied by re-validating the whole configuration with it (exactly as a file reload
would) before it is stored, so the API can never leave mlmon running on an invalid configuration.
The configuration file's own entries are not editable here; the API's are laid over them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ValidationError

from monitor.api.auth import PrincipalDep, permit
from monitor.api.deps import RuntimeDep
from monitor.api.routes.projects import require_project
from monitor.auth.model import Permission
from monitor.config.alerting import RuleConfig
from monitor.config.loader import describe_error
from monitor.config.overrides import Override, OverrideKind
from monitor.core.errors import InvalidInput, Issue, NotFound
from monitor.runtime import Runtime
from monitor.spend.config import BudgetConfig
from monitor.stack.config import IgnoreConfig
from monitor.store.overrides import OverrideStore

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["project settings"])
MANAGE = [permit(Permission.MANAGE_PROJECT)]


class SettingOut(BaseModel):
    kind: str
    name: str
    body: dict[str, Any]
    created_by: str


def _validated(model: type[BaseModel], body: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        return model.model_validate(body).model_dump(mode="json", by_alias=True, exclude_defaults=True)
    except ValidationError as exc:
        issues = [
            Issue(
                f"{where}.{'.'.join(map(str, e['loc']))}".rstrip("."),
                describe_error(e),
                field=".".join(map(str, e["loc"])),
            )
            for e in exc.errors()
        ]
        raise InvalidInput(issues, f"invalid {where}") from None


def _apply(
    runtime: Runtime, actor: str, change: Override | None, removed: tuple[str, str, str] | None, reason: str
) -> None:
    """Re-apply the configuration with the change; store it only once the result is accepted."""
    keep = [o for o in runtime.overrides if (o.project, o.kind, o.name) not in {removed, _key(change)}]
    candidate = [*keep, change] if change is not None else keep
    outcome = runtime.reload(actor, overrides=candidate, reason=reason, proposed=True)
    if outcome.error is not None:
        # the change was refused, not the file: answer without the file's path and lines
        issues = [Issue("change", issue.message, field=issue.field) for issue in outcome.error.issues]
        raise InvalidInput(issues, "change refused")
    store = OverrideStore(runtime.store.engine)
    if change is not None:
        store.put(change, runtime.clock.now())
    if removed is not None:
        store.remove(*removed)


def _key(override: Override | None) -> tuple[str, str, str] | None:
    return (override.project, override.kind, override.name) if override is not None else None


def _out(runtime: Runtime, project: str) -> list[SettingOut]:
    return [
        SettingOut(kind=o.kind, name=o.name, body=o.body, created_by=o.created_by)
        for o in runtime.overrides
        if o.project == project
    ]


def _put(
    runtime: Runtime, actor: str, project: str, kind: OverrideKind, name: str, body: dict[str, Any]
) -> list[SettingOut]:
    require_project(runtime, project)
    _apply(runtime, actor, Override(project, kind, name, body, actor), None, f"API: {kind} {name!r} set for {project}")
    return _out(runtime, project)


def _delete(runtime: Runtime, actor: str, project: str, kind: OverrideKind, name: str) -> list[SettingOut]:
    require_project(runtime, project)
    if not any((o.project, o.kind, o.name) == (project, kind, name) for o in runtime.overrides):
        raise NotFound(f"project {project!r} has no {kind} {name!r} set through the API")
    _apply(runtime, actor, None, (project, kind, name), f"API: {kind} {name!r} removed from {project}")
    return _out(runtime, project)


def _typed_body(model: type[BaseModel], *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The request body documented as `model` (the route reads a plain dict, so that its errors
    are worded by `_validated`)."""
    schema = model.model_json_schema(by_alias=True)
    for name in drop:
        schema.get("properties", {}).pop(name, None)
        if name in schema.get("required", []):
            schema["required"].remove(name)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


@router.get("/settings", summary="Settings of the project made through the API (budget, rules, ignores)")
def list_settings(project_id: str, runtime: RuntimeDep) -> list[SettingOut]:
    require_project(runtime, project_id)
    return _out(runtime, project_id)


@router.put(
    "/budget",
    summary="Set the project's budget (replaces the file's)",
    dependencies=MANAGE,
    openapi_extra=_typed_body(BudgetConfig),
)
def put_budget(project_id: str, body: dict[str, Any], runtime: RuntimeDep, principal: PrincipalDep) -> list[SettingOut]:
    return _put(runtime, principal.name, project_id, "budget", "budget", _validated(BudgetConfig, body, "budget"))


@router.delete("/budget", summary="Remove the budget set through the API", dependencies=MANAGE)
def delete_budget(project_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> list[SettingOut]:
    return _delete(runtime, principal.name, project_id, "budget", "budget")


@router.put(
    "/rules/{name}",
    summary="Create or replace a rule of this project",
    dependencies=MANAGE,
    openapi_extra=_typed_body(RuleConfig, drop=("name", "projects", "project_selector")),
)
def put_rule(
    project_id: str, name: str, body: dict[str, Any], runtime: RuntimeDep, principal: PrincipalDep
) -> list[SettingOut]:
    if "projects" in body or "project_selector" in body:
        raise InvalidInput(
            [Issue("rule.projects", "the project is the one in the URL", field="projects")], "invalid rule"
        )
    rule = _validated(RuleConfig, {**body, "name": name, "projects": [project_id]}, "rule")
    rule.pop("projects", None)
    return _put(runtime, principal.name, project_id, "rule", name, rule)


@router.delete("/rules/{name}", summary="Remove a rule set through the API", dependencies=MANAGE)
def delete_rule(project_id: str, name: str, runtime: RuntimeDep, principal: PrincipalDep) -> list[SettingOut]:
    return _delete(runtime, principal.name, project_id, "rule", name)


@router.put(
    "/ignores/{ident}",
    summary="Accept a finding until a date, with a reason",
    dependencies=MANAGE,
    openapi_extra=_typed_body(IgnoreConfig, drop=("id",)),
)
def put_ignore(
    project_id: str, ident: str, body: dict[str, Any], runtime: RuntimeDep, principal: PrincipalDep
) -> list[SettingOut]:
    if "projects" in body:
        raise InvalidInput(
            [Issue("ignore.projects", "the project is the one in the URL", field="projects")], "invalid ignore"
        )
    ignore = _validated(IgnoreConfig, {**body, "id": ident}, "ignore")
    return _put(runtime, principal.name, project_id, "ignore", ident, ignore)


@router.delete("/ignores/{ident}", summary="Remove an ignore set through the API", dependencies=MANAGE)
def delete_ignore(project_id: str, ident: str, runtime: RuntimeDep, principal: PrincipalDep) -> list[SettingOut]:
    return _delete(runtime, principal.name, project_id, "ignore", ident)
