"""Annotation templates cannot make an alert megabytes long."""

from __future__ import annotations

from alerts.templates import MAX_OUTPUT_CHARS, render


def test_template_output_is_capped_and_huge_values_are_refused() -> None:
    out = render(
        {
            "multiply": '{{ "x" * 5000000 }}',
            "loop": "{% for i in range(10000) %}{% for j in range(10000) %}yy{% endfor %}{% endfor %}",
            "power": "{{ 2 ** 9999999 }}",
            "fine": "{{ value | percent }} on {{ labels.model }}",
        },
        {"value": 0.913, "labels": {"model": "m"}},
    )
    assert out["multiply"].startswith("<error rendering multiply: SecurityError")
    assert len(out["loop"]) <= MAX_OUTPUT_CHARS + 20 and out["loop"].endswith("[cut]")
    assert out["power"].startswith("<error rendering power: SecurityError")
    assert out["fine"] == "91.3% on m"
