"""The OpenAPI document, made to describe what the service really answers.

FastAPI leaves nested pydantic `$defs` inside hand-written request bodies (whose `#/$defs/...`
references then resolve nowhere), documents 422 with its own error shape (mlmon answers
`{"error": {...}}`), and says nothing of the answers every route can give (401, 403, 404, 429,
503). This post-processing runs once, when the document is first asked for.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "message"],
            "properties": {
                "status": {"type": "integer"},
                "message": {"type": "string"},
                "issues": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}
COMMON_ANSWERS = {
    "400": "the request cannot be read",
    "401": "no valid credentials (`Authorization: Bearer <token>`)",
    "403": "the credentials do not allow this",
    "404": "unknown project, series, alert or silence",
    "422": "invalid parameters or body; `issues` names each",
    "429": "too many failed sign-in attempts from this address; see `Retry-After`",
    "503": "the database is unavailable; see `Retry-After`",
}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def install(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = finish(schema)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def finish(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    _hoist_defs(schema, components)
    error_ref = {"$ref": "#/components/schemas/Error"}
    for item in schema.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in COMMON_ANSWERS.items():
                entry = responses.setdefault(status, {"description": description})
                entry["content"] = {"application/json": {"schema": error_ref}}
            for status, entry in responses.items():
                if status.startswith(("4", "5")) and status not in COMMON_ANSWERS:
                    entry["content"] = {"application/json": {"schema": error_ref}}
    return schema


def _hoist_defs(node: Any, components: dict[str, Any]) -> None:
    """Move every nested `$defs` into components and point its references there."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            defs = current.pop("$defs", None)
            if isinstance(defs, dict):
                for name, definition in defs.items():
                    components.setdefault(name, definition)
                    stack.append(definition)
            ref = current.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                current["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
