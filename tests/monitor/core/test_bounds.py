"""The bounds of monitor.core: YAML guard, error-text cap, durations, regex safety."""

from __future__ import annotations

import pytest

from monitor.core.durations import parse_duration
from monitor.core.matchers import parse_matchers
from monitor.core.regex_safety import regex_problem
from monitor.core.text_cap import MAX_ERROR_CHARS, cap_text
from monitor.core.yaml_guard import MAX_DEPTH, YamlRefused, load_yaml


def test_plain_yaml_with_anchors_merges_and_tags_loads() -> None:
    doc = load_yaml("base: &b {a: 1}\nx: {<<: *b, c: !!str 2}\ny: *b\nz: 2024-01-01\n")
    assert doc["x"]["a"] == 1 and str(doc["x"]["c"]) == "2" and doc["y"]["a"] == 1


@pytest.mark.parametrize(
    ("text", "expected", "line"),
    [
        ("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
         + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(6)),
         "alias bomb", 5),
        ("x: " + "[" * 5000 + "]" * 5000, f"more than {MAX_DEPTH} levels", 1),
        ("x: !!python/object/apply:os.system [id]", "not allowed", 1),
        ("a: 1\nb: !custom 3", "not allowed", 2),
        ("x: " + "7" * 5000, "5,000 digits", 1),
    ],
)  # fmt: skip
def test_hostile_yaml_is_refused_before_it_is_built(text: str, expected: str, line: int) -> None:
    with pytest.raises(YamlRefused) as refused:
        load_yaml(text)
    assert expected in refused.value.message
    assert refused.value.line == line


def test_error_texts_are_capped_with_a_note() -> None:
    assert cap_text("short") == "short" and cap_text(None) is None
    capped = cap_text("x" * 1_000_000)
    assert capped is not None and capped.startswith("x" * MAX_ERROR_CHARS)
    assert capped.endswith("[996,000 more characters cut]") and len(capped) < MAX_ERROR_CHARS + 50


@pytest.mark.parametrize(
    ("value", "expected"),
    [("99999999999999999d", "at most 100y"), (float("inf"), "finite"), (float("nan"), "finite"), (1e300, "100y")],
)
def test_durations_are_bounded(value: object, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        parse_duration(value)
    assert parse_duration("100y").days == 36500


@pytest.mark.parametrize(
    ("pattern", "refused"),
    [
        ("(a+)+$", "exponential"),
        ("(a|aa)*b", "exponential"),
        ("(.*)*", "exponential"),
        ("(?=x)a", "RE2"),
        (r"(\w)\1", "RE2"),
        ("res.*", None),
        ("gpu-(a100|h100)", None),
        ("(foo|bar)+", None),
        ("x{1,3}-prod", None),
    ],
)
def test_selector_regexes_are_checked(pattern: str, refused: str | None) -> None:
    problem = regex_problem(pattern)
    if refused is None:
        assert problem is None
        assert parse_matchers(f'team=~"{pattern}"')
    else:
        assert problem is not None and refused in problem
        with pytest.raises(ValueError, match="refused"):
            parse_matchers(f'team=~"{pattern}"')
