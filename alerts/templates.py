"""Annotation templates: sandboxed Jinja2, strict about undefined names.

Variables: `labels`, `value`, `project` (id, name, team, owners, labels), `rule` (name, kind),
`params`, `details` (what the rule kind adds, e.g. threshold, baseline), `state`. Filters:
`percent` (0.913 -> "91.3%"), `duration` (seconds -> "2h5m", whole seconds), `when` (an ISO time ->
"2026-11-20 12:00:00 UTC", no microseconds). A template that fails at run time
renders as `<error rendering {field}: ...>`: the alert still goes out, carrying the error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from monitor.core.durations import format_duration

VARIABLES = frozenset({"labels", "value", "project", "rule", "params", "details", "state"})


def _percent(value: Any, digits: int = 1) -> str:
    try:
        return f"{float(value) * 100:.{digits}f}%"
    except (TypeError, ValueError):
        return str(value)


def _duration(value: Any) -> str:
    try:
        return format_duration(timedelta(seconds=round(float(value))))
    except (TypeError, ValueError, OverflowError):
        return str(value)


def _when(value: Any) -> str:
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
    env.filters["percent"] = _percent
    env.filters["duration"] = _duration
    env.filters["when"] = _when
    return env


ENV = _environment()


@lru_cache(maxsize=4096)
def compile_template(text: str) -> Template:
    return ENV.from_string(text)


def template_problems(text: str, extra_names: Iterable[str] = ()) -> list[str]:
    """Syntax errors and undefined top-level variables of a template (for check-config)."""
    try:
        tree = ENV.parse(text)
    except TemplateError as exc:
        return [f"template syntax error: {exc}"]
    undefined = meta.find_undeclared_variables(tree) - VARIABLES - set(extra_names)
    return [
        f"undefined template variable {name!r}; known: {', '.join(sorted(VARIABLES))}" for name in sorted(undefined)
    ]


def render(templates: Mapping[str, str], variables: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, text in templates.items():
        try:
            out[name] = compile_template(text).render(**variables)
        except Exception as exc:
            out[name] = f"<error rendering {name}: {type(exc).__name__}: {exc}>"
    return out
