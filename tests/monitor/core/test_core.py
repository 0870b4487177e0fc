"""Pure core: durations, matchers and selectors, naming rules."""

from __future__ import annotations

import gc
from datetime import timedelta

import pytest

from monitor.core.durations import format_duration, parse_duration
from monitor.core.gc_pause import gc_paused
from monitor.core.matchers import Matcher, MatchOp, parse_matchers, parse_selector
from monitor.core.naming import label_name_problem, labels_problem, metric_name_problem


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("7d", 604800),
        ("2w", 1209600),
        ("250ms", 0.25),
        (45, 45),
        ("0s", 0),
        ("1.5h", 5400),
    ],
)
def test_durations_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["often", "", "5", "5 m", "-5m", "m5", True, -1])
def test_bad_durations_say_what_was_expected(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_durations_round_trip() -> None:
    for text in ("30s", "5m", "1h30m", "1w2d", "250ms"):
        assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        (Matcher.of("model", "=", "churn"), {"model": "churn"}, True),
        (Matcher.of("model", "=", "churn"), {"model": "churn2"}, False),
        (Matcher.of("model", "!=", "churn"), {}, True),
        (Matcher.of("model", "=~", "ch.*"), {"model": "churn"}, True),
        (Matcher.of("model", "=~", "ch"), {"model": "churn"}, False),  # anchored
        (Matcher.of("model", "!~", "ch.*"), {"model": "vision"}, True),
        (Matcher.of("model", "=", ""), {}, True),  # a missing label is the empty string
        (Matcher.of("severity", "=~", "critical|high"), {"severity": "high"}, True),
    ],
)
def test_matchers(matcher: Matcher, labels: dict[str, str], expected: bool) -> None:
    assert matcher.matches(labels) is expected


def test_selector_parse_and_print() -> None:
    selector = parse_selector('accuracy{project="churn", model=~"res.*",env!="dev"}')
    assert selector.metric == "accuracy"
    assert [(m.name, m.op, m.value) for m in selector.matchers] == [
        ("project", MatchOp.EQ, "churn"),
        ("model", MatchOp.RE, "res.*"),
        ("env", MatchOp.NE, "dev"),
    ]
    assert selector.equality("project") == "churn"
    assert parse_selector(str(selector)) == selector
    assert parse_selector('{project="x"}').metric is None
    assert parse_matchers('a="b\\"c"')[0].value == 'b"c'


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('accuracy{project="x"', "expected"),
        ("accuracy{project=x}", "quoted label value"),
        ('accuracy{project~"x"}', "one of = != =~ !~"),
        ("{}", "selects nothing"),
        ('{a=~".*"}', "does not match the empty string"),
        ('acc{a=~"("}', "invalid regular expression"),
        ("9acc", "metric name"),
    ],
)
def test_bad_selectors_name_the_position(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="selector|regular expression") as info:
        parse_selector(text)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("accuracy", None),
        ("gpu_spend_usd", None),
        ("model_production_age_seconds", None),
        ("trainAccuracy", "snake_case"),
        ("lead_time_days", "base unit 'seconds'"),
        ("gpu_hours", "base unit 'seconds'"),
        ("latency_ms", "abbreviated unit"),
        ("requests_total", "must not end in '_total'"),
        ("size_kilobytes", "base unit 'bytes'"),
        ("error_counter", "metric type"),
        ("Accuracy", "lower-case"),
        ("source_up", "mlmon's own metrics"),
        ("", "empty"),
        ("a" * 151, "limit is 150"),
    ],
)
def test_metric_name_rules(name: str, problem: str | None) -> None:
    found = metric_name_problem(name)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_label_rules() -> None:
    assert label_name_problem("model") is None
    assert "reserved" in (label_name_problem("project") or "")
    assert "snake_case" in (label_name_problem("modelName") or "")
    assert "__" in (label_name_problem("__name__") or "")
    assert labels_problem({f"l{i}": "v" for i in range(31)}) == ("labels", "31 labels; the limit is 30")
    field, why = labels_problem({"model": "x" * 2000}) or ("", "")
    assert field == "labels.model" and "1024" in why


def test_gc_pauses_nest_and_the_last_one_out_restores_the_collector() -> None:
    assert gc.isenabled()
    outer = gc_paused()
    outer.__enter__()
    with gc_paused():  # e.g. an ingest during an evaluation cycle, in another thread
        assert not gc.isenabled()
    assert not gc.isenabled()  # the inner one leaving does not switch it back on under the outer
    outer.__exit__(None, None, None)
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # restored to what it found: off
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("op", "pattern", "values"),
    [
        ("=", "churn", {"churn"}),
        ("=", "", None),  # a missing label matches: nothing to list
        ("=~", "a|b", {"a", "b"}),
        ("=~", r"b\.c|x\|y|q\-r|s\ t", {"b.c", "x|y", "q-r", "s t"}),
        ("=~", "a|", None),
        ("=~", "b.c", None),
        ("=~", r"\d+", None),
        ("=~", "(?i)a", None),
        ("=~", "[ab]", None),
        ("!=", "a", None),
        ("!~", "a|b", None),
    ],
)
def test_literal_values_are_exactly_what_re2_admits(op: str, pattern: str, values: set[str] | None) -> None:
    matcher = Matcher.of("attributed", op, pattern)
    found = matcher.literal_values()
    assert found == (frozenset(values) if values is not None else None)
    for value in found or ():
        assert matcher.matches({"attributed": value})
    for other in ("", "bxc", "B.C", "ab", "a|b"):
        if found is not None and other not in found:
            assert not matcher.matches({"attributed": other})
