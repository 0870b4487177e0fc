"""Label matchers (=, !=, =~, !~) and series selectors like `accuracy{project="churn",model=~"res.*"}`.

Regexes follow Prometheus and Alertmanager exactly: Go's RE2 syntax (through google-re2, the same
engine family), anchored at both ends, so `(?i)` works, `\\d` is ASCII only, and constructs RE2 cannot
run in linear time (lookarounds, backreferences, repeats over 1000) are refused. The selector
grammar is the small subset of PromQL that names series; it is parsed by hand because a full PromQL
parser is not needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import re2

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
    _regex: re2._Regexp | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, name: str, op: str | MatchOp, value: str) -> Matcher:
        match_op = MatchOp(op)
        regex = None
        if match_op in (MatchOp.RE, MatchOp.NRE):
            regex = compile_anchored(value, name)
            # RE2 runs in linear time, but a nested repetition is still refused (issue 16's bound on
            # what a selector may ask); Alertmanager accepts those (README: where they differ)
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
        found = self._regex.fullmatch(actual) is not None
        return found if self.op is MatchOp.RE else not found

    def literal_values(self) -> frozenset[str] | None:
        """The exact non-empty values this matcher admits, when it is `=` or an `=~` that only
        alternates literal strings (`a|b\\.c`, as re.escape writes them); None for anything else,
        or when it admits the empty string (a missing label). Lets a store narrow in SQL first."""
        if self.op is MatchOp.EQ:
            return frozenset((self.value,)) if self.value else None
        if self.op is not MatchOp.RE:
            return None
        values = _literal_alternatives(self.value)
        return None if values is None or "" in values else frozenset(values)

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op.value}"{escaped}"'


_REGEX_SYNTAX = frozenset(".^$*+?()[]{}|\\")


def _literal_alternatives(pattern: str) -> list[str] | None:
    """`pattern`'s alternatives when each is a plain string (a backslash only before punctuation),
    else None."""
    out: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= len(pattern) or not _is_punctuation(pattern[i + 1]):
                return None  # \d, \w, \Q...: a class or a mode, not a literal
            current.append(pattern[i + 1])
            i += 2
            continue
        if ch == "|":
            out.append("".join(current))
            current = []
        elif ch in _REGEX_SYNTAX:
            return None
        else:
            current.append(ch)
        i += 1
    out.append("".join(current))
    return out


def _is_punctuation(ch: str) -> bool:
    # RE2, like Go, reads a backslash before any ASCII character that is not a letter or digit as
    # that character
    return ch.isascii() and not ch.isalnum()


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the error is raised to the caller; RE2 would also print it to stderr


def compile_anchored(pattern: str, name: str) -> re2._Regexp:
    """`pattern` as Alertmanager compiles it (`^(?:pattern)$` in Go's RE2); ValueError if RE2 refuses it."""
    try:
        return re2.compile(f"(?:{pattern})", _RE2_OPTIONS)
    except re2.error as exc:
        why = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(
            f"invalid regular expression {pattern[:100]!r} for label {name!r}: refused by RE2 (the engine of "
            f"Prometheus and Alertmanager): {why[:120]}"
        ) from None


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
    # Alertmanager's matcher lists (routes, inhibit rules, silences) may match the empty string;
    # each user says what that means (a silence refuses it), unlike a series selector.
    selector = parse_selector(stripped, select_all=True)
    return selector.matchers


def parse_selector(text: str, select_all: bool = False) -> Selector:
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
    if select_all:
        return Selector(metric, tuple(matchers))
    if metric is None and not matchers:
        raise ValueError(f"selector {text!r} selects nothing: give a metric name or at least one matcher")
    if metric is None and all(m.matches({}) for m in matchers):
        raise ValueError(f"selector {text!r} needs at least one matcher that does not match the empty string")
    return Selector(metric, tuple(matchers))
