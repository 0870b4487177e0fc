"""The `opencost` source against a local HTTP server answering OpenCost's allocation API.

The answers have the documented shape (`{"code":200,"status":"success","data":[{name: Allocation}]}`,
fields as in OpenCost's `core/pkg/opencost/allocation_json.go`, the reserved keys `__idle__` and
`__unallocated__`), with the numbers a GPU namespace would have.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from monitor.core.clock import FrozenClock
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.spend.ledger import read_days
from monitor.spend.sources import spend_sources
from tests.conftest import RuntimeFactory
from tests.monitor.spend.servers import QueryRecordingServer
from tests.support.http_server import Answer

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def allocation(
    name: str,
    namespace: str,
    *,
    gpu_hours: float,
    gpu_cost: float,
    total: float,
    efficiency: float | None,
    usage: float = 0.0,
    request: float = 0.0,
    window: tuple[str, str] = ("2026-11-19T00:00:00Z", "2026-11-20T00:00:00Z"),
) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {"cluster": "cluster-one", "namespace": namespace},
        "window": {"start": window[0], "end": window[1]},
        "start": window[0],
        "end": window[1],
        "minutes": 1440.0,
        "cpuCores": 4.0,
        "cpuCoreRequestAverage": 4.0,
        "cpuCoreUsageAverage": 1.2,
        "cpuCoreHours": 96.0,
        "cpuCost": 3.04,
        "cpuCostAdjustment": 0.0,
        "cpuEfficiency": 0.3,
        "gpuCount": gpu_hours / 24,
        "gpuRequestAverage": request,
        "gpuUsageAverage": usage,
        "gpuHours": gpu_hours,
        "gpuCost": gpu_cost,
        "gpuCostAdjustment": 0.0,
        "gpuEfficiency": efficiency,
        "networkTransferBytes": 0.0,
        "networkReceiveBytes": 0.0,
        "networkCost": 0.0,
        "networkCostAdjustment": 0.0,
        "loadBalancerCost": 0.0,
        "loadBalancerCostAdjustment": 0.0,
        "pvBytes": 0.0,
        "pvByteHours": 0.0,
        "pvCost": 0.0,
        "pvs": None,
        "pvCostAdjustment": 0.0,
        "ramBytes": 1.6e10,
        "ramByteRequestAverage": 1.6e10,
        "ramByteUsageAverage": 8.0e9,
        "ramByteHours": 3.84e11,
        "ramCost": 0.96,
        "ramCostAdjustment": 0.0,
        "ramEfficiency": 0.5,
        "sharedCost": 0.0,
        "externalCost": 0.0,
        "totalCost": total,
        "totalEfficiency": 0.4,
        "rawAllocationOnly": None,
    }


def asked(server: QueryRecordingServer) -> tuple[str, str]:
    """The window of the last request, as OpenCost echoes it in each allocation."""
    start, end = server.last_query()["window"][0].split(",")
    return start, end


def echoing(server: QueryRecordingServer, day_factor: float = 1.0) -> Any:
    return lambda _seen: Answer(answer(day_factor, asked(server)))


def answer(
    day_factor: float = 1.0, window: tuple[str, str] = ("2026-11-19T00:00:00Z", "2026-11-20T00:00:00Z")
) -> dict[str, Any]:
    return {
        "code": 200,
        "status": "success",
        "data": [
            {
                "churn": allocation(
                    "churn",
                    "ml-churn",
                    gpu_hours=48 * day_factor,
                    gpu_cost=48 * 2.5 * day_factor,
                    total=48 * 2.5 * day_factor + 4.0,
                    efficiency=0.25,
                    usage=0.5,
                    request=2.0,
                    window=window,
                ),
                "vision-team": allocation(
                    "vision-team",
                    "vision",
                    gpu_hours=24.0,
                    gpu_cost=60.0,
                    total=70.0,
                    efficiency=None,
                    usage=0.9,
                    request=1.0,
                    window=window,
                ),
                "__unallocated__": allocation(
                    "__unallocated__",
                    "kube-system",
                    gpu_hours=0.0,
                    gpu_cost=0.0,
                    total=12.5,
                    efficiency=0.0,
                    window=window,
                ),
                "__idle__": allocation(
                    "__idle__", "", gpu_hours=24.0, gpu_cost=55.0, total=80.0, efficiency=0.0, window=window
                ),
            }
        ],
    }


CONFIG = """
projects:
  - id: platform
    owners: [{{name: Ops, email: ops@example.com}}]
    sources:
      - name: opencost
        kind: opencost
        interval: 1h
        params:
          url: {url}
          aggregate: label:ml-project
          projects: {{vision-team: vision}}
          backfill: 2d
  - id: churn
    owners: [{{name: Ada, email: ada@example.com}}]
  - id: vision
    owners: [{{name: Grace, email: grace@example.com}}]
"""


def run(runtime: Runtime, clock: FrozenClock) -> Any:
    [plan] = runtime.plans
    return SourceRunner(runtime.store, clock).run(plan)


def days_of(runtime: Runtime, project: str) -> Any:
    sources = spend_sources(runtime.config)
    found = read_days(
        runtime.store,
        sources,
        [project],
        date(2026, 11, 10),
        date(2026, 11, 21),
        raw_retention=timedelta(days=30),
        now=NOW,
    )
    return found[project]["platform/opencost"]


def test_allocation_per_day_becomes_gpu_and_other_spend_gpu_hours_and_busy_time(
    make_runtime: RuntimeFactory, db_url: str
) -> None:
    with QueryRecordingServer() as server:
        server.route("/allocation", echoing(server))
        clock = FrozenClock(NOW)
        runtime = make_runtime(CONFIG.format(url=server.url("")), database_url=db_url, clock=clock)
        record = run(runtime, clock)
    assert record.ok, record.error
    # backfill 2d: Nov 18 and 19 complete, and today so far
    queries = server.queries("/allocation")
    windows = [q["window"][0] for q in queries]
    assert windows == [
        "2026-11-18T00:00:00Z,2026-11-19T00:00:00Z",
        "2026-11-19T00:00:00Z,2026-11-20T00:00:00Z",
        "2026-11-20T00:00:00Z,2026-11-20T12:00:00Z",
    ]
    query = queries[0]
    assert query["aggregate"] == ["label:ml-project"] and query["accumulate"] == ["true"]
    assert query["includeIdle"] == ["true"]

    churn = days_of(runtime, "churn")
    assert churn.amounts("allocated", "gpu")[date(2026, 11, 19)] == 120.0
    assert churn.amounts("allocated", "other")[date(2026, 11, 19)] == 4.0
    assert churn.gpu_usage[date(2026, 11, 19)] == 48 * 3600
    assert churn.gpu_busy[date(2026, 11, 19)] == 48 * 3600 * 0.25
    vision = days_of(runtime, "vision")  # mapped from the label value vision-team
    assert vision.gpu_busy[date(2026, 11, 19)] == 24 * 3600 * 0.9  # no gpuEfficiency: usage / request
    assert days_of(runtime, "__unattributed__").amounts(None, "all")[date(2026, 11, 19)] == 12.5
    assert days_of(runtime, "__idle__").amounts(None, "gpu")[date(2026, 11, 19)] == 55.0
    status = runtime.store.sources.status("platform", "opencost")
    assert status is not None and status.checkpoint["complete_through"] == "2026-11-19"
    assert status.checkpoint["currency"] == "USD"


def test_the_next_run_fetches_again_only_recent_days_and_replaces_them(make_runtime: RuntimeFactory) -> None:
    with QueryRecordingServer() as server:
        server.route("/allocation", echoing(server, 1.0))
        clock = FrozenClock(NOW)
        runtime = make_runtime(CONFIG.format(url=server.url("")), clock=clock)
        assert run(runtime, clock).ok
        server.route("/allocation", echoing(server, 2.0))  # OpenCost revised yesterday's numbers
        clock.advance(timedelta(hours=1))
        before = len(server.queries("/allocation"))
        assert run(runtime, clock).ok
        later = server.queries("/allocation")[before:]
    # refresh 1d: yesterday again, and today
    assert [q["window"][0][:10] for q in later] == ["2026-11-19", "2026-11-20"]
    assert days_of(runtime, "churn").amounts("allocated", "gpu")[date(2026, 11, 19)] == 240.0
    assert days_of(runtime, "churn").amounts("allocated", "gpu")[date(2026, 11, 18)] == 120.0


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            Answer({"code": 400, "status": "error", "message": "invalid aggregation"}),
            "OpenCost answered code 400: invalid aggregation",
        ),
        (Answer({"code": 200, "data": "nope"}), "expected data to be a list of allocation sets"),
        (
            Answer({"code": 200, "data": [{"churn": {"gpuCost": "12"}}]}),
            "data[0]['churn'].gpuCost: expected a number, got '12'",
        ),
        (Answer("upstream failure", status=502), "answered 502: upstream failure"),
    ],
)
def test_bad_answers_fail_the_run_with_the_reason(make_runtime: RuntimeFactory, reply: Answer, expected: str) -> None:
    with QueryRecordingServer() as server:
        server.route("/allocation", reply)
        clock = FrozenClock(NOW)
        runtime = make_runtime(CONFIG.format(url=server.url("")), clock=clock)
        record = run(runtime, clock)
    assert not record.ok and expected in (record.error or "")
    assert runtime.store.samples.count_series() == 0


def test_an_answer_for_another_window_than_asked_is_refused(make_runtime: RuntimeFactory) -> None:
    """OpenCost answers a window it cannot parse (or snaps one) with another: never booked as the day asked."""
    with QueryRecordingServer() as server:
        server.route("/allocation", Answer(answer()))  # always yesterday's window, whatever is asked
        clock = FrozenClock(NOW)
        runtime = make_runtime(CONFIG.format(url=server.url("")), clock=clock)
        record = run(runtime, clock)
    assert not record.ok
    assert "OpenCost answered for 2026-11-19T00:00:00Z..2026-11-20T00:00:00Z, not the requested day" in (
        record.error or ""
    )
    assert runtime.store.samples.count_series() == 0


RULES_CONFIG = """
projects:
  - id: platform
    owners: [{{name: Ops, email: ops@example.com}}]
    sources:
      - name: opencost
        kind: opencost
        interval: 1h
        params: {{url: {url}, aggregate: "label:ml-project", backfill: 20d}}
  - id: churn
    name: Churn classifier
    owners: [{{name: Ada, email: ada@example.com}}]
rules:
  - name: idle-gpus
    kind: idle_gpu
    params: {{floor: 0.1, window: 2d, min_gpu_hours: 4}}
  - name: spend-spike
    kind: spend_change
    params: {{baseline: 14d, relative: 0.5, min_amount: 50, scope: gpu}}
"""


def test_idle_gpus_and_a_spend_spike_alert_the_owners_through_the_engine(make_runtime: RuntimeFactory) -> None:
    from alerts.engine import AlertEngine
    from alerts.kinds import REGISTRY
    from alerts.model import AlertState
    from alerts.store import AlertStore
    from monitor.spend.providers import bind

    with QueryRecordingServer() as server:

        def route(_seen: Any) -> Answer:
            day = server.last_query()["window"][0][:10]
            spike = 3.0 if day == "2026-11-19" else 1.0  # yesterday, the last complete day, costs triple
            churn = allocation(
                "churn",
                "ml-churn",
                gpu_hours=48,
                gpu_cost=120 * spike,
                total=124 * spike,
                efficiency=0.05,
                window=asked(server),
            )
            return Answer({"code": 200, "status": "success", "data": [{"churn": churn}]})

        server.route("/allocation", route)
        clock = FrozenClock(NOW)
        runtime = make_runtime(RULES_CONFIG.format(url=server.url("")), clock=clock)
        assert run(runtime, clock).ok
    engine = AlertEngine(runtime.store, clock, REGISTRY, lambda: runtime.config, bind(lambda: runtime.config))
    engine.evaluate()
    alerts = {a.rule: a for a in AlertStore(runtime.store.engine).list()}
    idle = alerts["idle-gpus"]
    assert idle.state is AlertState.FIRING and idle.value == pytest.approx(0.05)
    # window 2d: yesterday (48 GPU-hours, 360 USD) and today so far (48, 120): 96 GPU-hours, 95% idle
    assert idle.annotations["summary"] == (
        "Churn classifier: GPUs were busy 5% of the 96.0 GPU-hours held in the last 2d (91.2 idle GPU-hours); "
        "about 456.00 USD of 480.00 USD GPU spend was wasted"
    )
    spike = alerts["spend-spike"]
    assert spike.state is AlertState.FIRING and spike.value == pytest.approx(2.0)
    assert spike.annotations["summary"] == (
        "Churn classifier: spend on 2026-11-19 was 360.00 USD, up +200% (240.00 USD) against the 14-day mean of "
        "120.00 USD"
    )
