"""The `dcgm` source against a real Prometheus (Debian package) scraping DCGM-format metrics.

The exporter is a local HTTP server serving the real dcgm-exporter sample
(../shared/data/dcgm/sample_metrics.txt: all HELP/TYPE lines first, the 2^63 "not supported"
sentinel) plus `DCGM_FI_PROF_GR_ENGINE_ACTIVE` series in the same layout, as an exporter with
`--kubernetes` writes them: GPUs held by pods of two namespaces, one with a sentinel value,
one held by no pod, hosts labelled `Hostname` (releases) and `hostname` (newer exporters).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.core.clock import FrozenClock
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.spend.ledger import read_days
from monitor.spend.sources import spend_sources
from tests.conftest import RuntimeFactory
from tests.support.http_server import Answer, LocalHttpServer
from tests.support.peers import shared_data
from tests.support.prometheus import run_prometheus

pytestmark = [pytest.mark.peer, pytest.mark.slow]

A100, H100 = "NVIDIA A100-SXM4-40GB", "NVIDIA H100 80GB HBM3"
GPUS = [
    # (uuid, model, host label, host, namespace, pod, busy)
    ("GPU-a1", A100, "Hostname", "node-a", "ml-churn", "train-0", "0.25"),
    ("GPU-a2", A100, "Hostname", "node-a", "ml-churn", "train-0", "0.75"),
    ("GPU-b1", H100, "hostname", "node-b", "vision", "serve-0", "9223372036854775794"),
    ("GPU-b2", H100, "hostname", "node-b", "", "", "0"),
]


def exposition() -> str:
    """The real sample with the busy metric added in its layout: every HELP/TYPE, then samples."""
    lines = shared_data("dcgm", "sample_metrics.txt").read_text().splitlines()
    comments = [line for line in lines if line.startswith("#")]
    samples = [line for line in lines if line and not line.startswith("#")]
    comments += [
        "# HELP DCGM_FI_PROF_GR_ENGINE_ACTIVE Ratio of time the graphics engine is active.",
        "# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge",
    ]
    for index, (uuid, model, host_label, host, namespace, pod, busy) in enumerate(GPUS):
        labels = (
            f'gpu="{index}", UUID="{uuid}",pci_bus_id="00000000:{index:02d}:00.0",device="nvidia{index}",'
            f'modelName="{model}",{host_label}="{host}",container="{"main" if pod else ""}",'
            f'namespace="{namespace}",pod="{pod}"'
        )
        samples.append(f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{labels}}} {busy}")
    return "\n".join([*comments, *samples]) + "\n"


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
          rates: [{{model: A100, hourly: 3.6}}, {{model: H100, hourly: 7.2}}]
          resolution: 1s
          backfill: 0d
      - name: hosts
        kind: dcgm
        interval: 5m
        params:
          url: {url}
          by: [hostname]
          projects: {{node-a: churn, node-b: vision}}
          default_rate: 1.0
          resolution: 1s
          backfill: 0d
  - id: churn
    owners: [{{name: Ada, email: ada@example.com}}]
  - id: vision
    owners: [{{name: Grace, email: grace@example.com}}]
"""


def days(runtime: Runtime, source: str, project: str, now: datetime) -> Any:
    found = read_days(
        runtime.store,
        spend_sources(runtime.config),
        [project],
        date(2026, 1, 1),
        now.date(),
        raw_retention=timedelta(days=30),
        now=now,
    )
    return found[project][f"platform/{source}"]


def test_busy_time_per_project_priced_by_model_with_sentinels_ignored(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    with LocalHttpServer() as exporter:
        exporter.route("/metrics", Answer(exposition().encode(), headers={"Content-Type": "text/plain; version=0.0.4"}))
        with run_prometheus(tmp_path / "prom", [f"127.0.0.1:{exporter.port}"]) as prom:
            prom.wait_for("DCGM_FI_PROF_GR_ENGINE_ACTIVE")
            # The sample's own series arrive too, the sentinel among them, as Prometheus stores it.
            [temp] = prom.query("DCGM_FI_DEV_MEMORY_TEMP")
            assert float(temp["value"][1]) > 9.2e18
            time.sleep(9)
            # a few scrapes back: every sample up to `now` is stored by then, however loaded the
            # machine (a scrape under way at `now` would land between the sources' reads)
            now = datetime.now(UTC) - timedelta(seconds=3)
            clock = FrozenClock(now)
            runtime = make_runtime(CONFIG.format(url=prom.url), clock=clock)
            runner = SourceRunner(runtime.store, clock)
            records = [runner.run(plan) for plan in runtime.plans]
    assert all(r.ok for r in records), [r.error for r in records]
    today = now.date()

    churn = days(runtime, "gpus", "churn", now)
    held = churn.gpu_usage[today]
    assert 2 * 4 <= held <= 2 * 60, "two GPUs, held since the first scrape a few seconds ago"
    assert churn.gpu_busy[today] == pytest.approx(held * 0.5), "mean of 0.25 and 0.75"
    assert churn.amounts(None, "gpu")[today] == pytest.approx(held / 3600 * 3.6)

    vision = days(runtime, "gpus", "vision", now)
    assert vision.gpu_usage[today] == pytest.approx(held / 2, abs=2), "the sentinel GPU is still held"
    assert today not in vision.gpu_busy, "its busy time is unknown, not zero"
    assert vision.amounts(None, "gpu")[today] == pytest.approx(vision.gpu_usage[today] / 3600 * 7.2)

    idle = days(runtime, "gpus", "__unattributed__", now)
    assert idle.gpu_busy[today] == 0.0 and idle.gpu_usage[today] == pytest.approx(held / 2, abs=2)

    # By host: Hostname and hostname are the same label to the source.
    by_host_churn = days(runtime, "hosts", "churn", now)
    by_host_vision = days(runtime, "hosts", "vision", now)
    assert by_host_churn.gpu_usage[today] == pytest.approx(held, abs=2)
    assert by_host_vision.gpu_usage[today] == pytest.approx(held, abs=4), (
        "both node-b GPUs, one with a pod, one without"
    )
    assert by_host_vision.amounts(None, "gpu")[today] == pytest.approx(by_host_vision.gpu_usage[today] / 3600 * 1.0)


def test_an_unpriced_gpu_model_fails_the_run(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    with LocalHttpServer() as exporter:
        exporter.route("/metrics", Answer(exposition().encode()))
        with run_prometheus(tmp_path / "prom", [f"127.0.0.1:{exporter.port}"]) as prom:
            prom.wait_for("DCGM_FI_PROF_GR_ENGINE_ACTIVE")
            time.sleep(2)
            clock = FrozenClock(datetime.now(UTC))
            config = CONFIG.format(url=prom.url).replace("{model: H100, hourly: 7.2}", "{model: V100, hourly: 1.0}")
            runtime = make_runtime(config, clock=clock)
            record = SourceRunner(runtime.store, clock).run(runtime.plans[0])
    assert not record.ok
    assert record.error == (
        f"GPU model {H100!r} has no rate in params.rates (known: A100, V100) and no default_rate: add one, or its "
        "spend would be missing"
    )


def kube_state_metrics() -> str:
    """`kube_pod_labels` as kube-state-metrics 2 exposes it with
    `--metric-labels-allowlist=pods=[ml-project]`: train-0 carries the label, serve-0 does not."""
    return (
        "# HELP kube_pod_labels Kubernetes labels converted to Prometheus labels.\n"
        "# TYPE kube_pod_labels gauge\n"
        'kube_pod_labels{namespace="ml-churn",pod="train-0",uid="0b5d3c1e-1",label_ml_project="churn-model"} 1\n'
        'kube_pod_labels{namespace="vision",pod="serve-0",uid="7f2a9e44-2"} 1\n'
        'kube_pod_labels{namespace="ml-churn",pod="notebook-0",uid="c3e1aa07-3",label_ml_project="churn-model"} 1\n'
    )


POD_CONFIG = """
projects:
  - id: platform
    owners: [{{name: Ops, email: ops@example.com}}]
    sources:
      - name: pods
        kind: dcgm
        interval: 5m
        params:
          url: {url}
          pod_label: ml-project
          by: [namespace]
          projects: {{churn-model: churn, vision: vision}}
          unmapped: unattributed
          rates: [{{model: A100, hourly: 3.6}}, {{model: H100, hourly: 7.2}}]
          resolution: 1s
          backfill: 0d
  - id: churn
    owners: [{{name: Ada, email: ada@example.com}}]
  - id: vision
    owners: [{{name: Grace, email: grace@example.com}}]
"""


def test_a_pod_label_from_kube_state_metrics_names_the_project(make_runtime: RuntimeFactory, tmp_path: Path) -> None:
    with LocalHttpServer() as exporter, LocalHttpServer() as ksm:
        exporter.route("/metrics", Answer(exposition().encode(), headers={"Content-Type": "text/plain; version=0.0.4"}))
        ksm.route(
            "/metrics", Answer(kube_state_metrics().encode(), headers={"Content-Type": "text/plain; version=0.0.4"})
        )
        targets = [f"127.0.0.1:{exporter.port}", f"127.0.0.1:{ksm.port}"]
        with run_prometheus(tmp_path / "prom", targets) as prom:
            prom.wait_for("DCGM_FI_PROF_GR_ENGINE_ACTIVE")
            prom.wait_for("kube_pod_labels")
            time.sleep(9)
            # a few scrapes back: every sample up to `now` is stored by then, however loaded the
            # machine (a scrape under way at `now` would land between the sources' reads)
            now = datetime.now(UTC) - timedelta(seconds=3)
            clock = FrozenClock(now)
            runtime = make_runtime(POD_CONFIG.format(url=prom.url), clock=clock)
            [record] = [SourceRunner(runtime.store, clock).run(plan) for plan in runtime.plans]
    assert record.ok, record.error
    today = now.date()
    # ml-churn is not in `projects`: only the pod label (churn-model -> churn) can have put the GPUs there
    churn = days(runtime, "pods", "churn", now)
    held = churn.gpu_usage[today]
    assert 2 * 4 <= held <= 2 * 60 and churn.gpu_busy[today] == pytest.approx(held * 0.5)
    assert churn.amounts(None, "gpu")[today] == pytest.approx(held / 3600 * 3.6), "the join keeps M's value"
    # serve-0 has no ml-project label: its namespace names the project; the GPU held by no pod is nobody's
    vision = days(runtime, "pods", "vision", now)
    assert vision.gpu_usage[today] == pytest.approx(held / 2, abs=2)
    idle = days(runtime, "pods", "__unattributed__", now)
    # the pod's GPUs count from kube-state-metrics' first scrape, the unattributed one from the
    # exporter's: under load the two targets' first scrapes can be seconds apart
    assert held / 2 - 2 <= idle.gpu_usage[today] <= held / 2 + 8
