"""Label matchers (=, !=, =~, !~) and series selectors like `accuracy{project="churn",model=~"res.*"}`.

Regexes are anchored, as in Prometheus and Alertmanager. The selector grammar is the small subset
of PromQL that names series; it is parsed by hand because a full PromQL parser is not needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from monitor.core.regex_safety import regex_problem


class MatchOp(StrEnum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher. A missing label matches as the empty string."""

    name: str
    op: MatchOp
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, name: str, op: str | MatchOp, value: str) -> Matcher:
        match_op = MatchOp(op)
        regex = None
        if match_op in (MatchOp.RE, MatchOp.NRE):
            try:
                regex = re.compile(f"(?:{value})\\Z")
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r} for label {name!r}: {exc}") from exc
            problem = regex_problem(value)
            if problem is not None:
                raise ValueError(f"regular expression {value[:100]!r} for label {name!r} refused: {problem}")
        return cls(name, match_op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op is MatchOp.EQ:
            return actual == self.value
        if self.op is MatchOp.NE:
            return actual != self.value
        assert self._regex is not None
        found = self._regex.match(actual) is not None
        return found if self.op is MatchOp.RE else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op.value}"{escaped}"'


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


@dataclass(frozen=True, slots=True)
class Selector:
    """A metric name (optional) and label matchers; `project` is matched like any label."""

    metric: str | None
    matchers: tuple[Matcher, ...] = ()

    def equality(self, name: str) -> str | None:
        """The value a label must equal, when the selector pins it with `=`."""
        for m in self.matchers:
            if m.name == name and m.op is MatchOp.EQ:
                return m.value
        return None

    def __str__(self) -> str:
        inner = ",".join(str(m) for m in self.matchers)
        return f"{self.metric or ''}{{{inner}}}" if inner or not self.metric else self.metric


_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OP = re.compile(r"=~|!~|!=|=")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


class _Cursor:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def fail(self, expected: str) -> ValueError:
        got = self.text[self.pos : self.pos + 10] or "end of input"
        return ValueError(f"selector {self.text!r}: expected {expected} at position {self.pos + 1}, got {got!r}")

    def take(self, pattern: re.Pattern[str], expected: str) -> str:
        self.skip_space()
        found = pattern.match(self.text, self.pos)
        if not found:
            raise self.fail(expected)
        self.pos = found.end()
        return found.group(0)

    def peek(self, char: str) -> bool:
        self.skip_space()
        return self.text.startswith(char, self.pos)

    def quoted(self) -> str:
        self.skip_space()
        if self.pos >= len(self.text) or self.text[self.pos] not in "\"'":
            raise self.fail("a quoted label value")
        quote = self.text[self.pos]
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                out.append(_ESCAPES.get(self.text[self.pos + 1], "\\" + self.text[self.pos + 1]))
                self.pos += 2
                continue
            if ch == quote:
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1
        raise self.fail(f"closing {quote}")


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """Parse `a="b", c=~"d.*"` (optionally wrapped in braces)."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        stripped = "{" + stripped + "}"
    selector = parse_selector(stripped)
    return selector.matchers


def parse_selector(text: str) -> Selector:
    """Parse a series selector; raise ValueError naming the position and what was expected."""
    cur = _Cursor(text)
    metric: str | None = None
    cur.skip_space()
    if not cur.peek("{"):
        metric = cur.take(_NAME, "a metric name or '{'")
    matchers: list[Matcher] = []
    if cur.peek("{"):
        cur.pos += 1
        while not cur.peek("}"):
            name = cur.take(_LABEL, "a label name")
            op = cur.take(_OP, "one of = != =~ !~")
            value = cur.quoted()
            matchers.append(Matcher.of(name, op, value))
            if cur.peek(","):
                cur.pos += 1
                continue
            if not cur.peek("}"):
                raise cur.fail("',' or '}'")
        cur.pos += 1
    cur.skip_space()
    if cur.pos != len(text):
        raise cur.fail("end of selector")
    if metric is None and not matchers:
        raise ValueError(f"selector {text!r} selects nothing: give a metric name or at least one matcher")
    if metric is None and all(m.matches({}) for m in matchers):
        raise ValueError(f"selector {text!r} needs at least one matcher that does not match the empty string")
    return Selector(metric, tuple(matchers))
