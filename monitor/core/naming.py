"""Rules for metric names, label names and label values.

mlmon exports every stored metric on `/metrics` as `mlmon_<metric>`, and that output must pass
`promtool check metrics` with no findings. So a metric name is accepted only if the exported
gauge would pass promtool's lint (client_golang `promlint`: snake_case, base units, no type or
`_total`/`_count`/`_sum`/`_bucket` suffix on a gauge, no abbreviated units, no colons). The
rules are restated here because no Python library implements promlint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

EXPORT_PREFIX = "mlmon_"
MAX_METRIC_LENGTH = 150
MAX_LABELS = 30
MAX_LABEL_NAME_LENGTH = 100
MAX_LABEL_VALUE_LENGTH = 1024
RESERVED_LABELS = frozenset({"project", "job", "instance", "le", "quantile"})
RESERVED_METRIC_PREFIXES = (
    "source_",
    "http_",
    "config_",
    "scheduler_",
    "ingest_",
    "alert_",
    "alerts_",
    "notification_",
    "notifications_",
    "outbox_",
    "rule_",
    "project_info",
    "project_owners",
    "scrape_",
)
"""mlmon's own metric families on /metrics; a stored metric may not shadow them."""

_METRIC = re.compile(r"[a-z][a-z0-9_]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_CAMEL = re.compile(r"[a-z][A-Z]")
_PROJECT = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")

_BASE_UNITS = {
    "amperes": "amperes",
    "bytes": "bytes",
    "celsius": "celsius",
    "grams": "grams",
    "joules": "joules",
    "kelvin": "kelvin",
    "meters": "meters",
    "metres": "metres",
    "seconds": "seconds",
    "volts": "volts",
    "minutes": "seconds",
    "hours": "seconds",
    "days": "seconds",
    "weeks": "seconds",
    "kelvins": "kelvin",
    "fahrenheit": "celsius",
    "rankine": "celsius",
    "inches": "meters",
    "yards": "meters",
    "miles": "meters",
    "bits": "bytes",
    "calories": "joules",
    "pounds": "grams",
    "ounces": "grams",
}
_UNIT_PREFIXES = (
    "pico",
    "nano",
    "micro",
    "milli",
    "centi",
    "deci",
    "deca",
    "hecto",
    "kilo",
    "kibi",
    "mega",
    "mibi",
    "giga",
    "gibi",
    "tera",
    "tebi",
    "peta",
    "pebi",
)
_ABBREVIATIONS = ("s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d")
_TYPES = ("counter", "gauge", "summary", "histogram", "gaugehistogram")
_RESERVED_SUFFIXES = ("_total", "_count", "_sum", "_bucket", "_created", "_info")


def metric_name_problem(name: str) -> str | None:
    """Why `name` cannot be a stored metric, or None when it can."""
    if not name:
        return "expected a metric name, got an empty string"
    if len(name) > MAX_METRIC_LENGTH:
        return f"metric name is {len(name)} characters long; the limit is {MAX_METRIC_LENGTH}"
    if _CAMEL.search(name):
        return f"metric name {name!r} must be snake_case, not camelCase"
    if not _METRIC.fullmatch(name):
        return f"metric name {name!r} must match [a-z][a-z0-9_]* (lower-case snake_case)"
    for prefix in RESERVED_METRIC_PREFIXES:
        if name.startswith(prefix):
            return f"metric name {name!r} starts with {prefix!r}, which mlmon's own metrics use"
    exported = EXPORT_PREFIX + name
    for suffix in _RESERVED_SUFFIXES:
        if exported.endswith(suffix):
            return f"metric name {name!r} must not end in {suffix!r}: mlmon exports it as a gauge"
    for part in exported.split("_"):
        base = _BASE_UNITS.get(part)
        if base is None:
            for prefix in _UNIT_PREFIXES:
                if part.startswith(prefix) and part[len(prefix) :] in _BASE_UNITS:
                    base = _BASE_UNITS[part[len(prefix) :]]
                    break
        if base is not None and base != part:
            return f"metric name {name!r} uses the unit {part!r}; use the base unit {base!r}"
    for abbrev in _ABBREVIATIONS:
        if f"_{abbrev}_" in exported or exported.endswith(f"_{abbrev}"):
            return f"metric name {name!r} uses the abbreviated unit {abbrev!r}; spell the base unit out"
    for type_name in _TYPES:
        if f"_{type_name}_" in exported or exported.endswith(f"_{type_name}"):
            return f"metric name {name!r} must not contain the metric type {type_name!r}"
    return None


def label_name_problem(name: str) -> str | None:
    """Why `name` cannot be a label name, or None when it can."""
    if not _LABEL.fullmatch(name) or name.startswith("__"):
        return f"label name {name!r} must match [a-zA-Z_][a-zA-Z0-9_]* and not start with '__'"
    if len(name) > MAX_LABEL_NAME_LENGTH:
        return f"label name {name[:20]!r}... is longer than {MAX_LABEL_NAME_LENGTH} characters"
    if _CAMEL.search(name):
        return f"label name {name!r} must be snake_case, not camelCase"
    if name in RESERVED_LABELS:
        return f"label name {name!r} is reserved (mlmon or Prometheus sets it)"
    return None


def labels_problem(labels: Mapping[str, object]) -> tuple[str, str] | None:
    """(field, reason) of the first problem in a label set, or None when it is acceptable."""
    if len(labels) > MAX_LABELS:
        return "labels", f"{len(labels)} labels; the limit is {MAX_LABELS}"
    for name, value in labels.items():
        problem = label_name_problem(name)
        if problem:
            return f"labels.{name}", problem
        if not isinstance(value, str):
            return f"labels.{name}", f"expected a string label value, got {type(value).__name__}"
        if len(value) > MAX_LABEL_VALUE_LENGTH:
            return (
                f"labels.{name}",
                f"label value is {len(value)} characters; the limit is {MAX_LABEL_VALUE_LENGTH}",
            )
    return None


def project_id_problem(project_id: str) -> str | None:
    if not _PROJECT.fullmatch(project_id):
        return f"project id {project_id!r} must match [a-z0-9][a-z0-9_.-]* and be at most 64 characters"
    return None
