"""YAML read with bounds: alias expansion, nesting depth, tags and integer size.

ruamel.yaml (like PyYAML) shares an aliased node rather than copying it, so a "billion laughs"
file is small in memory until something walks it (validation, conversion to plain data, an error
message quoting it): then it costs gigabytes. Its composer is recursive, so 5,000 nested
brackets end in RecursionError, and any `!!python/...` tag ends in a TypeError from the safe
constructor. This module walks the parser's event stream once, iteratively, before anything is
built, and refuses such documents with the line they start on. Every YAML reader of mlmon
(configuration, conda files, ignore files, rule tests) goes through `load_yaml`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    Event,
    ScalarEvent,
)

MAX_DEPTH = 64
"""Deeper than any configuration or lock file needs; far below Python's recursion limit."""
MAX_ALIAS_EXPANSION = 100_000
"""Nodes that aliases may add when expanded (a configuration reusing blocks needs hundreds)."""
MAX_INTEGER_DIGITS = 100

_STANDARD_TAGS = frozenset(
    "tag:yaml.org,2002:" + name
    for name in ("str", "int", "float", "bool", "null", "seq", "map", "omap", "set", "timestamp", "merge", "binary")
)
_INTEGER = re.compile(r"[-+]?(0[xob])?[0-9_a-fA-F]+")


class YamlRefused(ValueError):
    """A YAML document refused before it was built; `line`/`column` are 1-based."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.message = message
        self.line = line
        self.column = column
        super().__init__(message)


@dataclass
class _Open:
    anchor: str | None
    size: int = 1


def check_events(events: Any) -> None:
    """Refuse an event stream whose nesting, alias expansion, tags or integers are out of bounds."""
    anchors: dict[str, int] = {}
    stack: list[_Open] = []
    expanded = 0
    for event in events:
        if isinstance(event, CollectionStartEvent):
            _check_tag(event)
            if len(stack) >= MAX_DEPTH:
                raise YamlRefused(f"nested more than {MAX_DEPTH} levels deep", *_where(event))
            stack.append(_Open(event.anchor))
        elif isinstance(event, CollectionEndEvent):
            done = stack.pop()
            _close(done, anchors, stack)
        elif isinstance(event, ScalarEvent):
            _check_tag(event)
            _check_scalar(event)
            _close(_Open(event.anchor), anchors, stack)
        elif isinstance(event, AliasEvent):
            size = anchors.get(str(event.anchor), 1)
            expanded += size - 1
            if expanded > MAX_ALIAS_EXPANSION:
                raise YamlRefused(
                    f"aliases expand to more than {MAX_ALIAS_EXPANSION:,} nodes (an alias bomb?)", *_where(event)
                )
            if stack:
                stack[-1].size += size


def _close(node: _Open, anchors: dict[str, int], stack: list[_Open]) -> None:
    if node.anchor is not None:
        anchors[str(node.anchor)] = node.size
    if stack:
        stack[-1].size += node.size


def _check_tag(event: Event) -> None:
    tag = getattr(event, "tag", None)
    if tag is None:
        return
    text = str(tag)
    if text in ("!", "?") or text in _STANDARD_TAGS:
        return
    raise YamlRefused(f"tag {text[:80]!r} is not allowed; only plain YAML data is read", *_where(event))


def _check_scalar(event: ScalarEvent) -> None:
    value = event.value
    if event.style is None and len(value) > MAX_INTEGER_DIGITS and _INTEGER.fullmatch(value):
        raise YamlRefused(
            f"a number of {len(value):,} digits; at most {MAX_INTEGER_DIGITS} are accepted", *_where(event)
        )


def _where(event: Event) -> tuple[int | None, int | None]:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (None, None)


def load_yaml(text: str, typ: str = "rt") -> Any:
    """The document in `text` (ruamel `typ`), after `check_events`; raises YamlRefused, or
    ruamel's YAMLError for a syntax error."""
    yaml = YAML(typ=typ)
    try:
        check_events(yaml.parse(text))
    except RecursionError:  # pragma: no cover - the walk is iterative; kept as a last barrier
        raise YamlRefused(f"nested more than {MAX_DEPTH} levels deep") from None
    try:
        return YAML(typ=typ).load(text)
    except RecursionError:
        raise YamlRefused(f"nested more than {MAX_DEPTH} levels deep") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise YamlRefused(f"cannot be read as plain data: {type(exc).__name__}") from None


def position(exc: YAMLError) -> tuple[int | None, int | None]:
    """1-based line and column of a ruamel error, where it has one."""
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            return mark.line + 1, mark.column + 1
    return None, None
