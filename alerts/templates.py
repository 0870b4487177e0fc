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
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from monitor.core.durations import format_duration

VARIABLES = frozenset({"labels", "value", "project", "rule", "params", "details", "state"})


def _percent(value: Any, digits: int = 1) -> str:
    try:
        return f"{float(value) * 100:.{digits}f}%"
    except (TypeError, ValueError):
        return str(value)


_GRAIN = ((7 * 86400, 86400), (86400, 3600), (3600, 60), (0, 1))
"""(from this many seconds, round to this many): a summary says "55w2d", not "55w1d17h14m34s"."""


def _duration(value: Any) -> str:
    try:
        seconds = float(value)
        grain = next(step for start, step in _GRAIN if abs(seconds) >= start)
        return format_duration(timedelta(seconds=round(seconds / grain) * grain))
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


MAX_OUTPUT_CHARS = 16 * 1024
"""An annotation longer than this is cut: it is stored with the alert and sent with every notification."""


class _BoundedEnvironment(SandboxedEnvironment):
    """The sandbox, plus `*` and `**` refused when they would build a huge value: output is cut at
    MAX_OUTPUT_CHARS, but `{{ "x" * 5000000 }}` would cost its memory before being cut."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(count, int)
                    and len(seq) * count > MAX_OUTPUT_CHARS
                ):
                    raise SecurityError(f"the result of * would be longer than {MAX_OUTPUT_CHARS} items")
        if operator == "**" and isinstance(right, int) and abs(right) > 1000:
            raise SecurityError("exponents above 1000 are not allowed")
        return super().call_binop(context, operator, left, right)


def _environment() -> SandboxedEnvironment:
    env = _BoundedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
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
            out[name] = _bounded_render(compile_template(text), variables)
        except Exception as exc:
            out[name] = f"<error rendering {name}: {type(exc).__name__}: {str(exc)[:500]}>"
    return out


def _bounded_render(template: Template, variables: Mapping[str, Any]) -> str:
    """The template's output, generated piece by piece and cut at MAX_OUTPUT_CHARS (a loop over a
    large range stops there instead of building megabytes)."""
    parts: list[str] = []
    size = 0
    for piece in template.generate(**variables):
        parts.append(piece)
        size += len(piece)
        if size > MAX_OUTPUT_CHARS:
            return "".join(parts)[:MAX_OUTPUT_CHARS] + " ... [cut]"
    return "".join(parts)
