"""The `dcgm` source on MIG instances and on exporters without profiling metrics, against a real Prometheus.

Series carry dcgm-exporter's own labels (internal/pkg/rendermetrics): a MIG sample has the parent
GPU's `UUID` plus `GPU_I_PROFILE` and `GPU_I_ID`. Without CAP_SYS_ADMIN or on pre-Volta GPUs the
exporter drops every `DCGM_FI_PROF_*` series and only `DCGM_FI_DEV_GPU_UTIL` (percent) remains.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.core.clock import FrozenClock
from monitor.runner import SourceRunner
from tests.conftest import RuntimeFactory
from tests.monitor.spend.test_dcgm_prometheus import days
from tests.support.http_server import Answer, LocalHttpServer
from tests.support.prometheus import run_prometheus

pytestmark = [pytest.mark.peer, pytest.mark.slow]

H100, V100 = "NVIDIA H100 80GB HBM3", "Tesla V100-SXM2-16GB"
HEAD = (
    "# HELP DCGM_FI_PROF_GR_ENGINE_ACTIVE Ratio of time the graphics engine is active.\n"
    "# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge\n"
    "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n"
    "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n"
)


def labels(gpu: int, uuid: str, model: str, namespace: str, pod: str, mig: tuple[str, str] | None = None) -> str:
    out = (
        f'gpu="{gpu}",UUID="{uuid}",pci_bus_id="00000000:{gpu + 0x1B:02X}:00.0",device="nvidia{gpu}",'
        f'modelName="{model}"'
    )
    if mig:
        out += f',GPU_I_PROFILE="{mig[0]}",GPU_I_ID="{mig[1]}"'
    return out + f',Hostname="gpu-node",container="main",namespace="{namespace}",pod="{pod}"'


def mig_exposition() -> str:
    """Four H100s: three whole (vision), one split into two 3g.40gb instances (churn)."""
    lines = [HEAD.rstrip("\n")]
    lines += [
        f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{labels(gpu, f'GPU-h{gpu}', H100, 'vision', f'v-{gpu}')}}} 0.5"
        for gpu in range(3)
    ]
    for instance in ("1", "2"):
        mig = labels(3, "GPU-h3", H100, "ml-churn", f"c-{instance}", ("3g.40gb", instance))
        lines.append(f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{mig}}} 0.25")
    return "\n".join(lines) + "\n"


def no_profiling_exposition() -> str:
    """V100s whose exporter cannot profile: GPU_UTIL only."""
    lines = [HEAD.rstrip("\n")]
    lines.append(f"DCGM_FI_DEV_GPU_UTIL{{{labels(0, 'GPU-v0', V100, 'ml-churn', 'train-0')}}} 40")
    lines.append(f"DCGM_FI_DEV_GPU_UTIL{{{labels(1, 'GPU-v1', V100, 'ml-churn', 'train-0')}}} 60")
    return "\n".join(lines) + "\n"


CONFIG = """
projects:
  - id: platform
    owners: [{{name: Ops, email: ops@example.com}}]
    sources:
      - name: gpus
        kind: dcgm
        interval: 5m
        params:
          url: {url}
          by: [namespace]
          projects: {{ml-churn: churn}}
          rates: {rates}
          resolution: 1s
          backfill: 0d
{extra}
  - id: churn
    owners: [{{name: Ada, email: ada@example.com}}]
  - id: vision
    owners: [{{name: Grace, email: grace@example.com}}]
"""


def collect(make_runtime: RuntimeFactory, tmp_path: Path, exposition: str, rates: str, extra: str = "") -> tuple:
    with LocalHttpServer() as exporter:
        exporter.route("/metrics", Answer(exposition.encode(), headers={"Content-Type": "text/plain; version=0.0.4"}))
        with run_prometheus(tmp_path / "prom", [f"127.0.0.1:{exporter.port}"]) as prom:
            prom.wait_for(
                "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
                if "PROF_GR" in exposition.split("\n", 4)[-1]
                else "DCGM_FI_DEV_GPU_UTIL"
            )
            time.sleep(5)
            now = datetime.now(UTC)
            clock = FrozenClock(now)
            runtime = make_runtime(CONFIG.format(url=prom.url, rates=rates, extra=extra), clock=clock)
            record = SourceRunner(runtime.store, clock).run(runtime.plans[0])
    return runtime, record, now


def test_mig_instances_are_priced_by_their_share_of_the_gpu(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime, record, now = collect(make_runtime, tmp_path, mig_exposition(), "[{model: H100, hourly: 7.0}]")
    assert record.ok, record.error
    today = now.date()
    vision, churn = days(runtime, "gpus", "vision", now), days(runtime, "gpus", "churn", now)
    per_gpu = vision.gpu_usage[today] / 3  # seconds each series was held
    assert per_gpu >= 3
    # two 3g.40gb hold half the GPU each (4/8 of its memory > 3/7 of its compute): one GPU together,
    # so the four GPUs count 4 GPU-seconds per second, not the 5 of one per series
    assert churn.gpu_usage[today] == pytest.approx(per_gpu, rel=0.1)
    assert vision.gpu_usage[today] + churn.gpu_usage[today] == pytest.approx(4 * per_gpu, rel=0.05)
    assert churn.amounts(None, "gpu")[today] == pytest.approx(churn.gpu_usage[today] / 3600 * 7.0)
    assert churn.gpu_busy[today] == pytest.approx(churn.gpu_usage[today] * 0.25)


def test_a_mig_profile_rate_card_line_prices_the_instance_hour(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    rates = "[{model: H100, hourly: 7.0}, {model: H100, profile: 3g.40gb, hourly: 2.0}]"
    runtime, record, now = collect(make_runtime, tmp_path, mig_exposition(), rates)
    assert record.ok, record.error
    churn = days(runtime, "gpus", "churn", now)
    held_instance_seconds = churn.gpu_usage[now.date()] / 0.5  # each instance counted as half a GPU
    assert churn.amounts(None, "gpu")[now.date()] == pytest.approx(held_instance_seconds / 3600 * 2.0)


def test_a_mig_profile_neither_priced_nor_readable_fails_naming_it(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    odd = mig_exposition().replace('GPU_I_PROFILE="3g.40gb"', 'GPU_I_PROFILE="<<<NULL>>>"')
    runtime, record, _now = collect(make_runtime, tmp_path, odd, "[{model: H100, hourly: 7.0}]")
    assert not record.ok and "MIG profile '<<<NULL>>>' of 'NVIDIA H100 80GB HBM3' is not in params.rates" in (
        record.error or ""
    )
    assert runtime.store.samples.count_series() == 0


def test_without_profiling_metrics_gpu_util_is_read_and_labelled(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime, record, now = collect(make_runtime, tmp_path, no_profiling_exposition(), "[{model: V100, hourly: 2.0}]")
    assert record.ok, record.error
    churn = days(runtime, "gpus", "churn", now)
    held = churn.gpu_usage[now.date()]
    assert held >= 2 * 3, "two GPUs held: never the silent zero of an absent busy metric"
    assert churn.gpu_busy[now.date()] == pytest.approx(held * 0.5)  # 40% and 60%
    assert churn.amounts(None, "gpu")[now.date()] == pytest.approx(held / 3600 * 2.0)
    busy = [s for s in runtime.store.samples.find_series() if s.key.metric == "gpu_busy_seconds"]
    assert busy and all(dict(s.key.labels).get("busy_metric") == "DCGM_FI_DEV_GPU_UTIL" for s in busy)
    assert churn.busy_from == {"DCGM_FI_DEV_GPU_UTIL": {now.date()}}  # what the project page says it from


def test_without_profiling_metrics_fallback_none_fails_the_run(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    runtime, record, _now = collect(
        make_runtime, tmp_path, no_profiling_exposition(), "[{model: V100, hourly: 2.0}]", "          fallback: none"
    )
    assert not record.ok
    assert "report DCGM_FI_DEV_GPU_UTIL but not DCGM_FI_PROF_GR_ENGINE_ACTIVE" in (record.error or "")
    assert runtime.store.samples.count_series() == 0
