"""mlmon's configured rules as Prometheus alerting rules over its own /metrics (pure: config in,
YAML text out).

Each enabled rule becomes one alerting rule: the kind's PromQL (`RuleKind.promql`) scoped to the
rule's projects, its `for`, `keep_firing_for` and labels, and its annotations translated to Go
templates where that is safe (`monitor.export.go_templates`). What PromQL cannot say is written as
a comment above the rule; rules it cannot express at all are listed at the top and returned as
`skipped`, with the reason.
"""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from alerts.compiled import CompiledRule, compile_rule
from alerts.kinds.base import RuleKind
from monitor.config.models import MlmonConfig
from monitor.core.durations import format_duration
from monitor.core.matchers import Matcher, matches_all
from monitor.export.go_templates import literal, translate
from monitor.export.semantics import differences, skip_reason

GROUP = "mlmon"
TEMPLATE_ANNOTATION = "mlmon_template"
"""Renders as a JSON object {annotation: original} of the mlmon templates not fully translated."""

REPLICAS_COLLAPSED = "max without (instance, job)"
_REGEX_SPECIAL = frozenset(".^$*+?()[]{}|\\")


@dataclass(frozen=True)
class Skipped:
    rule: str
    kind: str
    reason: str


@dataclass(frozen=True)
class ExportedRule:
    rule: str
    kind: str
    alert: dict[str, Any]
    """The Prometheus rule: alert, expr, for, keep_firing_for, labels, annotations."""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RulesExport:
    rules: list[ExportedRule]
    skipped: list[Skipped]
    text: str
    """The rules file (YAML, with the notes and the skipped rules as comments)."""


def export_rules(config: MlmonConfig, kinds: Mapping[str, RuleKind[Any]], origin: str = "") -> RulesExport:
    """Every configured rule as a Prometheus alerting rule, or as a reason it cannot be one."""
    exported: list[ExportedRule] = []
    skipped: list[Skipped] = []
    for rule_config in config.rules:
        if not rule_config.enabled:
            skipped.append(Skipped(rule_config.name, rule_config.kind, "disabled (enabled: false)"))
            continue
        rule = compile_rule(rule_config, kinds[rule_config.kind])
        scope = project_scope(rule, config)
        if scope is None:
            skipped.append(Skipped(rule.name, rule.kind.name, "its project_selector matches no configured project"))
            continue
        matcher, scope_note = scope
        expr = rule.kind.promql(rule.params, matcher) if rule.kind.promql is not None else None
        if expr is None:
            skipped.append(Skipped(rule.name, rule.kind.name, skip_reason(rule)))
            continue
        exported.append(ExportedRule(rule.name, rule.kind.name, _alert(rule, expr), differences(rule, scope_note)))
    interval = format_duration(config.alerting.evaluation_interval)
    return RulesExport(exported, skipped, render(exported, skipped, interval, origin))


def project_scope(rule: CompiledRule, config: MlmonConfig) -> tuple[str, str | None] | None:
    """The project matcher text for the kind's hook (empty: every project) and a note when the scope
    was resolved from project labels now; None when the rule selects no project."""
    if rule.config.projects is not None:
        return (_one_of("project", rule.config.projects), None) if rule.config.projects else None
    if not rule.config.project_selector:
        return "", None
    ids = [p.id for p in config.projects if matches_all(rule.project_matchers, {**p.labels, "project": p.id})]
    if not ids:
        return None
    note = (
        f"project_selector {', '.join(rule.config.project_selector)} resolved when exported to: {', '.join(ids)} "
        "(/metrics has no project labels; export again when projects change)"
    )
    return _one_of("project", ids), note


def _one_of(label: str, values: Sequence[str]) -> str:
    if len(values) == 1:
        return str(Matcher.of(label, "=", values[0]))
    regex = "|".join("".join("\\" + c if c in _REGEX_SPECIAL else c for c in v) for v in values)
    return str(Matcher.of(label, "=~", regex))


def _alert(rule: CompiledRule, expr: str) -> dict[str, Any]:
    # Every web replica exports the same store: collapsing `instance` (and `job`) gives one alert per
    # mlmon alert, with mlmon's own labels, however many replicas Prometheus scrapes.
    alert: dict[str, Any] = {"alert": rule.name, "expr": f"{REPLICAS_COLLAPSED} ({expr})"}
    if rule.timing.for_.total_seconds() > 0:
        alert["for"] = format_duration(rule.timing.for_)
    if rule.timing.keep_firing_for.total_seconds() > 0:
        alert["keep_firing_for"] = format_duration(rule.timing.keep_firing_for)
    if rule.config.labels:
        alert["labels"] = dict(rule.config.labels)
    annotations = translate_annotations(rule)
    if annotations:
        alert["annotations"] = annotations
    return alert


def translate_annotations(rule: CompiledRule) -> dict[str, str]:
    """The rule's annotations (the kind's default summary included) as Go templates, plus
    `mlmon_template` with the originals of those that were not fully translated."""
    constants = {"params": rule.params.model_dump(mode="json"), "rule": {"name": rule.name, "kind": rule.kind.name}}
    out: dict[str, str] = {}
    originals: dict[str, str] = {}
    for name, text in rule.annotations.items():
        if text == "":
            continue  # mlmon drops empty annotations too
        go = translate(text, constants)
        out[name] = go.text
        if not go.translated:
            originals[name] = text
    if originals:
        # Prometheus expands every annotation, so the originals are escaped to print as they are.
        out[TEMPLATE_ANNOTATION] = literal(json.dumps(originals, ensure_ascii=False, sort_keys=True))
    return out


def render(rules: Sequence[ExportedRule], skipped: Sequence[Skipped], interval: str, origin: str = "") -> str:
    """The rules file: one group evaluated at mlmon's evaluation interval."""
    header = [
        f"Prometheus alerting rules exported by `mlmon export prometheus-rules`{f' from {origin}' if origin else ''}.",
        "They read mlmon's /metrics (mlmon_* gauges): Prometheus must scrape mlmon. Each expression is wrapped in",
        f"`{REPLICAS_COLLAPSED}` so that several replicas serving the same store give one alert.",
        "The comment above each rule says where it behaves differently from mlmon's own evaluation.",
        f"{len(rules)} rule(s) exported, {len(skipped)} not exported{':' if skipped else '.'}",
    ]
    header += [line for s in skipped for line in _wrapped(f"- {s.rule} ({s.kind}): {s.reason}", "    ")]
    seq = CommentedSeq()
    for index, rule in enumerate(rules):
        seq.append(_mapping(rule.alert))
        lines = [f"{rule.rule} ({rule.kind}), differences from mlmon:"]
        lines += [line for note in rule.notes for line in _wrapped(f"- {note}", "    ")]
        seq.yaml_set_comment_before_after_key(index, before="\n".join(lines), indent=6)
    group = CommentedMap()
    group["name"] = GROUP
    group["interval"] = interval
    group["rules"] = seq
    doc = CommentedMap()
    doc["groups"] = CommentedSeq([group])
    doc.yaml_set_start_comment("\n".join(header))
    yaml = YAML()
    yaml.width = 1_000_000  # one PromQL expression per line, never folded
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def _mapping(data: Mapping[str, Any]) -> CommentedMap:
    out = CommentedMap()
    for key, value in data.items():
        out[key] = _mapping(value) if isinstance(value, Mapping) else value
    return out


def _wrapped(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, width=110, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)
