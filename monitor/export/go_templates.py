"""mlmon's annotation templates (sandboxed Jinja2) as Prometheus's (Go text/template).

Only expressions whose meaning is the same on both sides are translated:

    {{ value }}                       -> {{ $value }}
    {{ labels.x }}, {{ labels["x"] }} -> {{ $labels.x }}
    {{ project.id }}                  -> {{ $labels.project }}
    {{ project.name }}, .team         -> looked up in mlmon_project_info with `query`
    {{ value | percent }}             -> {{ $value | humanizePercentage }}
    {{ value | duration }}            -> {{ $value | humanizeDuration }}
    {{ params.value | percent(0) }}   -> "90%" (only params and rule: constants, rendered now)

Anything else (details, state, other filters, `{% if %}` blocks, whitespace control) stays in the
text as literal characters, escaped so Go prints them as they are, and the annotation is reported
as not fully translated so the caller can keep the original beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError, meta, nodes

from alerts.templates import ENV

_PROJECT_INFO_LABELS = {"name": "name", "team": "team"}
_HUMANIZE = {"percent": "humanizePercentage", "duration": "humanizeDuration"}
_CONSTANT_NAMES = frozenset({"params", "rule"})


@dataclass(frozen=True, slots=True)
class GoTemplate:
    text: str
    """The Prometheus annotation text."""
    translated: bool
    """False when some of the original had to be kept as literal characters."""


def translate(text: str, constants: Mapping[str, Any]) -> GoTemplate:
    """`text` (mlmon's Jinja2) as a Go template; `constants` are `params` and `rule` of the rule."""
    try:
        tokens = list(ENV.lex(text))
        ENV.parse(text)
    except TemplateError:
        return GoTemplate(literal(text), False)
    if any(_unsplittable(kind, value) for _line, kind, value in tokens):
        return GoTemplate(literal(text), False)  # blocks or comments: branches cannot be split safely
    out: list[str] = []
    pending: list[str] = []  # literal characters not yet escaped (escaping needs the whole run)
    translated = True
    for source, is_expression in _pieces(tokens):
        if not is_expression:
            pending.append(source)
            continue
        constant = _constant(source, constants)
        action = None if constant is not None else _action(source)
        if constant is not None:
            pending.append(constant)
        elif action is None:
            pending.append(source)
            translated = False
        else:
            out += [literal("".join(pending)), action]
            pending = []
    out.append(literal("".join(pending)))
    return GoTemplate("".join(out), translated)


def _unsplittable(kind: str, value: str) -> bool:
    if kind in ("variable_begin", "variable_end"):
        return value not in ("{{", "}}")  # whitespace control trims the neighbouring text
    return kind.endswith(("_begin", "_end"))  # {% ... %}, {# ... #}, raw blocks, line statements


def _pieces(tokens: Iterable[tuple[int, str, str]]) -> Iterable[tuple[str, bool]]:
    """(source text, whether it is a `{{ ... }}`), in order."""
    inner: list[str] | None = None
    for _line, kind, value in tokens:
        if kind == "variable_begin":
            inner = []
        elif kind == "variable_end" and inner is not None:
            yield "{{" + "".join(inner) + "}}", True
            inner = None
        elif inner is not None:
            inner.append(value)
        else:
            yield value, False


def _constant(source: str, constants: Mapping[str, Any]) -> str | None:
    """An expression of `params`, `rule` and literals only is the same for every alert: rendered now."""
    free = meta.find_undeclared_variables(ENV.parse(source))
    if not free <= _CONSTANT_NAMES:
        return None
    try:
        return ENV.from_string(source).render(**constants)
    except Exception:
        return None


def _action(source: str) -> str | None:
    """The Go template for one `{{ ... }}`, or None when it has no safe equivalent."""
    body = ENV.parse(source).body
    if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
        return None
    expr = body[0].nodes[0]
    if isinstance(expr, nodes.Filter) and expr.name in _HUMANIZE and not (expr.args or expr.kwargs):
        inner = _operand(expr.node) if expr.node is not None else None
        return None if inner != "$value" else f"{{{{ {inner} | {_HUMANIZE[expr.name]} }}}}"
    operand = _operand(expr)
    if operand is not None:
        return f"{{{{ {operand} }}}}"
    return _project_info(expr)


def _operand(expr: nodes.Node) -> str | None:
    if isinstance(expr, nodes.Name) and expr.name == "value":
        return "$value"
    label = _label_of(expr, "labels")
    if label is not None:
        return _go_label(label)
    if _label_of(expr, "project") == "id":
        return "$labels.project"
    return None


def _label_of(expr: nodes.Node, root: str) -> str | None:
    """`x` of `root.x` or `root["x"]`."""
    if isinstance(expr, nodes.Getattr) and isinstance(expr.node, nodes.Name) and expr.node.name == root:
        return expr.attr
    if (
        isinstance(expr, nodes.Getitem)
        and isinstance(expr.node, nodes.Name)
        and expr.node.name == root
        and isinstance(expr.arg, nodes.Const)
        and isinstance(expr.arg.value, str)
    ):
        return expr.arg.value
    return None


def _go_label(name: str) -> str:
    if name.isidentifier() and name.isascii():
        return f"$labels.{name}"
    return f"index $labels {_go_string(name)}"


def _project_info(expr: nodes.Node) -> str | None:
    """`project.name` / `project.team`: the labels of mlmon_project_info, which mlmon exports."""
    field = _label_of(expr, "project")
    label = _PROJECT_INFO_LABELS.get(field or "")
    if label is None:
        return None
    return (
        '{{ with printf "mlmon_project_info{project=%q}" $labels.project | query }}'
        f'{{{{ . | first | label "{label}" }}}}{{{{ end }}}}'
    )


def _go_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def literal(text: str) -> str:
    """Characters Go's text/template prints as they are: only `{{` starts an action there."""
    escaped = text.replace("{{", '{{ "{{" }}')
    if escaped.endswith("{"):
        # A lone trailing brace would merge with the next action's `{{`.
        escaped = escaped[:-1] + '{{ "{" }}'
    return escaped
