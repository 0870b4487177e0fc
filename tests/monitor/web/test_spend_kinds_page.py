"""The project page shows purchases apart from usage, with whether the budget counts each kind,
and says when GPU busy time came from DCGM's coarser fallback metric.

A FOCUS export goes through the real `focus` source (DuckDB reader, spreading, GPU detection);
the DCGM readings are stored in the layout the `dcgm` source writes (its labelling is checked
against a real Prometheus in tests/monitor/spend/test_dcgm_mig_fallback.py). Expected amounts are
worked out here from the rows, never read back from the page's own code.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from monitor.core.clock import FrozenClock
from monitor.core.types import Sample, SeriesKey, labels_of, ms_from_datetime
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.spend.series import ATTRIBUTED, BUSY_METRIC, GPU_BUSY, GPU_USAGE, SOURCE, day_start, zone
from tests.conftest import RuntimeFactory
from tests.monitor.web.world import web_app

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
GPU_ROW = "$1.624 per On Demand Linux g5.4xlarge Instance Hour"
OTHER_ROW = "$0.023 per GB-Mo for StandardStorage"
HEADER = (
    "BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ChargeDescription,Tags"
)
UTIL = "DCGM_FI_DEV_GPU_UTIL"


def focus_export(path: Path) -> Path:
    """November 1-20: 24 USD of GPU and 6 of storage a day; a 900 USD commitment bought for the
    month; a 50 USD credit on the 5th."""
    tags = '"{""ml-project"": ""churn""}"'
    lines = [HEADER]
    for day in range(1, 21):
        start = datetime(2026, 11, day, 1, tzinfo=UTC)
        period = f"{start:%Y-%m-%dT%H:%M:%SZ},{start + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}"
        lines.append(f'24,24,USD,{period},Usage,"{GPU_ROW}",{tags}')
        lines.append(f'6,6,USD,{period},Usage,"{OTHER_ROW}",{tags}')
    lines.append(f'900,0,USD,2026-11-01T00:00:00Z,2026-12-01T00:00:00Z,Purchase,"Savings Plan, 1 month",{tags}')
    lines.append(f'-50,-50,USD,2026-11-05T00:00:00Z,2026-11-06T00:00:00Z,Credit,"Promotional credit",{tags}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


CONFIG = """
auth: {{anonymous: viewer}}
projects:
  - id: finops
    owners: [{{name: Fin, email: fin@example.com}}]
    sources:
      - {{name: aws, kind: focus, interval: 1h, params: {{path: "{path}", attribution: [{{tag: ml-project}}]}}}}
      - {{name: gpus, kind: dcgm, interval: 5m, params: {{url: "http://127.0.0.1:9", by: [namespace],
          rates: [{{model: V100, hourly: 2.0}}]}}}}
  - id: churn
    owners: [{{name: Ada, email: ada@example.com}}]
    spend: {spend}
"""


def store_dcgm_days(runtime: Runtime) -> None:
    """Two days of GPU time for churn: the 18th read from the profiling metric, the 19th from GPU_UTIL."""
    store = runtime.store
    tz = zone("UTC")
    samples = []
    for day, busy, fallback in ((date(2026, 11, 18), 1800.0, False), (date(2026, 11, 19), 3600.0, True)):
        ts = ms_from_datetime(day_start(day, tz))
        base = {ATTRIBUTED: "churn", SOURCE: "gpus"}
        samples.append(Sample(SeriesKey("finops", GPU_USAGE, labels_of(base)), ts, 7200.0))
        busy_labels = {**base, BUSY_METRIC: UTIL} if fallback else base
        samples.append(Sample(SeriesKey("finops", GPU_BUSY, labels_of(busy_labels)), ts, busy))
    store.samples.append(samples)


def page(make_runtime: RuntimeFactory, tmp_path: Path, exclude: str | None) -> str:
    """The churn page; `exclude`: what its budget leaves out, None for no budget."""
    path = focus_export(tmp_path / "export.csv")
    clock = FrozenClock(NOW)
    spend = "{}" if exclude is None else f"{{budget: {{amount: 3000, exclude: [{exclude}]}}}}"
    runtime = make_runtime(CONFIG.format(path=path, spend=spend), clock=clock)
    [aws] = [plan for plan in runtime.plans if plan.source == "aws"]
    record = SourceRunner(runtime.store, clock).run(aws)
    assert record.ok, record.error
    store_dcgm_days(runtime)
    with TestClient(web_app(runtime)) as http:
        answer = http.get("/projects/churn")
    assert answer.status_code == 200, answer.text
    return answer.text


def kinds(html: str) -> dict[str, tuple[str, str]]:
    """data-scope -> (amount, counted cell) of the Spend by kind table, as text."""
    table = html.split('id="spend-kinds"', 1)[1].split("</table>", 1)[0]
    out = {}
    for scope, cells in re.findall(r'<tr data-scope="(\w+)">(.*?)</tr>', table, re.S):
        texts = [" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)]
        out[scope] = (texts[1], texts[2] if len(texts) > 2 else "")
    return out


def spent(html: str) -> str:
    cell = html.split('id="spent">', 1)[1].split("</td>", 1)[0]
    return " ".join(re.sub(r"<[^>]+>", " ", cell).split())


def test_purchases_are_shown_apart_and_not_counted_when_the_budget_excludes_them(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    html = page(make_runtime, tmp_path, "purchase")
    # 20 days to date x 24 and x 6; the month's commitment spread over its 30 days: 30 a day
    assert kinds(html) == {
        "gpu": ("480 USD", "counted"),
        "other": ("120 USD", "counted"),
        "purchase": ("600 USD", "not counted (left out by spend.budget.exclude)"),
        "credit": ("-50.00 USD", "counted"),
    }
    assert spent(html).startswith("550 USD (18%)")  # 480 + 120 - 50: what the counted rows add up to
    assert '<th class="num">2026-11 to date</th>' in html
    assert "Billed cost of the spend sources the budget counts. A charge that covers several days" in html
    assert "Spend here counts every kind, purchases and commitments included, which the budget" in html  # the TCO


def test_without_an_exclusion_the_purchase_is_counted_in_the_budget(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    html = page(make_runtime, tmp_path, "")
    assert kinds(html)["purchase"] == ("600 USD", "counted")
    assert spent(html).startswith("1,150 USD (38%)")
    assert "Spend here counts every kind" not in html


def test_without_a_budget_the_kinds_are_shown_for_the_month_without_a_counted_column(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    html = page(make_runtime, tmp_path, None)
    assert kinds(html) == {
        "gpu": ("480 USD", ""),
        "other": ("120 USD", ""),
        "purchase": ("600 USD", ""),
        "credit": ("-50.00 USD", ""),
    }
    assert "In the budget's figure" not in html and "No budget." in html


def test_busy_time_read_from_the_fallback_metric_is_said_on_the_page(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    html = page(make_runtime, tmp_path, "purchase")
    notes = re.findall(r'<p class="note busy-fallback">(.*?)</p>', html, re.S)
    assert len(notes) == 1, notes
    note = " ".join(notes[0].split())
    assert note.startswith(f"Busy time from finops/gpus on 1 of these days is {UTIL}, the share of time any kernel ran")
    assert "busy_metric=&#34;DCGM_FI_DEV_GPU_UTIL&#34;" in note or 'busy_metric="DCGM_FI_DEV_GPU_UTIL"' in note
    bars = re.findall(r'<rect class="bar"[^>]*data-value="([^"]+)"', html)
    assert sorted(bars) == ["0.25", "0.5"]  # both days measured: the fallback is a value, not a gap
