"""Regexes in selectors that would hang mlmon or that its peers cannot run.

mlmon matches label regexes with Python's backtracking `re`; Prometheus and Alertmanager use
RE2, which refuses backreferences and lookaround. A regex is refused here when RE2 refuses it
(it would not mean the same in an exported rule) or when it nests a repetition inside another
(`(a+)+$`, `(a|aa)*b`: exponential backtracking on a non-matching label value).
"""

from __future__ import annotations

import re
from typing import Any

import re2

try:  # Python 3.11 keeps the regex parser as sre_parse; 3.12+ as re._parser
    from re import _parser as sre_parse  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[import-not-found,no-redef,unused-ignore]

_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, getattr(sre_parse, "POSSESSIVE_REPEAT", None)} - {None}


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` is refused, or None."""
    options = re2.Options()
    options.log_errors = False
    try:
        re2.compile(pattern, options)
    except re2.error as exc:
        why = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        return f"RE2 (as used by Prometheus and Alertmanager) cannot run it: {why[:120]}"
    try:
        tree = sre_parse.parse(pattern)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    if _nested_repeat(tree, inside_repeat=False):
        return (
            "a repetition inside a repetition, or overlapping alternatives repeated (like `(a+)+` or `(a|aa)*`), "
            "can take exponential time; simplify it"
        )
    return None


def _nested_repeat(items: Any, inside_repeat: bool) -> bool:
    for op, arg in items:
        if op in _REPEATS:
            low, high, body = arg
            unbounded = high == sre_parse.MAXREPEAT or high > 1
            if unbounded and inside_repeat and _can_vary(body):
                return True
            if _nested_repeat(body, inside_repeat or unbounded):
                return True
        elif op is sre_parse.SUBPATTERN:
            if _nested_repeat(arg[-1], inside_repeat):
                return True
        elif op is sre_parse.BRANCH:
            branches = arg[1]
            if inside_repeat and len(branches) > 1 and _overlapping(branches):
                return True
            if any(_nested_repeat(branch, inside_repeat) for branch in branches):
                return True
    return False


def _can_vary(body: Any) -> bool:
    return len(list(body)) > 0


def _overlapping(branches: list[Any]) -> bool:
    """Alternatives that can start with the same character (`a|aa`), a cause of blow-up in a loop."""
    firsts: list[Any] = []
    for branch in branches:
        items = list(branch)
        if not items or items[0][0] is not sre_parse.LITERAL:
            return True
        if items[0][1] in firsts:
            return True
        firsts.append(items[0][1])
    return False
