"""The remediation plan: lowest fixing version, torch's companions and build, from a real PEP 691 index.

The index (tests/stack/plan_index.py) serves torch's real release history and the companions' real
metadata pins; the advisories are the real OSV records of ../shared/data/osv.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from packaging.version import Version

from monitor.cli import main
from monitor.stack.advisories.index import AdvisoryIndex
from monitor.stack.findings import find
from monitor.stack.inventory.model import Inventory, Package
from monitor.stack.plan.index_client import IndexClient, MemoryCache
from monitor.stack.plan.inputs import plan_for
from monitor.stack.plan.model import Exposure, Plan
from monitor.stack.plan.select import choose
from tests.monitor.stack.plan_index import PlanIndex
from tests.monitor.stack.support import torch_releases
from tests.support.http_server import LocalHttpServer

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
PROJECT = {"torch": "2.5.1", "torchvision": "0.20.1", "torchaudio": "2.5.1", "triton": "3.1.0", "torchtext": "0.18.0"}


@pytest.fixture
def plan_index() -> Iterator[PlanIndex]:
    with LocalHttpServer() as server:
        yield PlanIndex(server)


def inventory(packages: dict[str, str], python: str = "3.11", index: str | None = None) -> Inventory:
    return Inventory(
        "lockfile",
        "uv.lock",
        tuple(
            Package(n, v, "uv.lock", i + 1, index=index if n == "torch" else None)
            for i, (n, v) in enumerate(packages.items())
        ),
        python_version=python,
    )


def run_plan(inv: Inventory, index: AdvisoryIndex, url: str | None, platform: dict[str, str] | None = None,
             cache: MemoryCache | None = None, now: datetime = NOW) -> Plan:  # fmt: skip
    with httpx.Client(timeout=10) as http:
        client = IndexClient(http, url, cache or MemoryCache(), now, backoff=0.01)
        return plan_for(inv, find(inv, index), index, client, index_url=url, now=now, platform=platform)


# --- choosing the version (pure) ------------------------------------------------------------------


def test_lowest_candidate_free_of_every_fixable_finding_disjoint_ranges_and_regressions() -> None:
    # A: fixed in 1.1; B: [1.0, 1.2) and again [1.3, 1.4) (a regression); C: never fixed; D: not
    # affecting 1.0 but introduced in 1.2 (an advisory the project is not exposed to today).
    affected = {
        "1.1": {"B", "C"},
        "1.2": {"C", "D"},
        "1.3": {"B", "C"},
        "1.4": {"C"},
        "1.5": {"C"},
    }
    exposed = [Exposure("A", "critical", fix_versions=("1.1",)), Exposure("B", "high", fix_versions=("1.2", "1.4")),
               Exposure("C", "medium")]  # fmt: skip
    plan = choose("pkg", ["1.0"], exposed, [Version(v) for v in affected], lambda v: frozenset(affected[v]))
    assert plan.target == "1.4"
    assert plan.closes == {"critical": 1, "high": 1} and plan.closed == ("A", "B")
    assert plan.unfixable == ("C",) and plan.unfixable_counts == {"medium": 1}
    assert plan.inferred == () and plan.still_open == ()


def test_no_single_version_closes_all_proposes_the_one_closing_the_worst() -> None:
    affected = {"2.0": {"B"}, "3.0": {"A"}}
    exposed = [Exposure("A", "critical"), Exposure("B", "low")]
    plan = choose("pkg", ["1.0"], exposed, [Version("2.0"), Version("3.0")], lambda v: frozenset(affected[v]))
    assert plan.target == "2.0" and plan.closed == ("A",) and plan.still_open == ("B",)
    assert "no single version closes every fixable finding" in plan.notes[0]


# --- against the recorded index --------------------------------------------------------------------


def test_old_torch_plan_target_companions_and_build(plan_index: PlanIndex, index: AdvisoryIndex) -> None:
    inv = inventory(PROJECT)
    plan = run_plan(inv, index, plan_index.url(), {"sys_platform": "linux", "platform_machine": "x86_64"})
    torch = plan.for_package("torch")
    assert torch is not None and torch.basis == "index"
    # Independent check on the release history file: the lowest final torch above 2.5.1 whose open
    # advisories are all ones no release fixes.
    open_now = {m.key for m in index.match("torch", "2.5.1")}
    finals = sorted(
        Version(v) for v, r in torch_releases().items() if not r["yanked"] and Version(v) > Version("2.5.1")
    )
    never_fixed = {k for k in open_now if all(k in {m.key for m in index.match("torch", str(v))} for v in finals)}
    expected = next(v for v in finals if {m.key for m in index.match("torch", str(v))} <= never_fixed)
    assert torch.target == str(expected) == "2.11.0"
    assert set(torch.unfixable) == never_fixed
    assert sum(torch.closes.values()) + len(torch.unfixable) == torch.findings == len(open_now)
    assert torch.closes["critical"] == 1 and "CVE-2025-32434" in torch.closed
    assert torch.build is not None and torch.build.status == "published"
    assert torch.build.files == ("torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl",)
    companions = {c.package: c for c in torch.companions}
    assert companions["torchvision"].proposed == "0.26.0" and companions["torchvision"].pairing == "declared"
    assert companions["torchaudio"].proposed == "2.11.1" and companions["torchaudio"].pairing == "range"
    assert "does not declare the pairing" in companions["torchaudio"].evidence
    assert companions["triton"].pairing == "dropped" and companions["triton"].proposed is None
    # torchvision 0.20.1's metadata is not served as a .metadata file: it was read from the wheel by ranges
    ranged = [s for s in plan_index.server.requests() if s.header("Range") and "torchvision-0.20.1" in s.path]
    assert ranged and all(s.path.endswith(".whl") for s in ranged)


def test_a_torch_that_pins_triton_pairs_it(plan_index: PlanIndex, index: AdvisoryIndex) -> None:
    """Capped by what the project can install: Python 3.9 has no torch wheel after 2.8."""
    target = {"sys_platform": "linux", "platform_machine": "x86_64"}
    torch = run_plan(inventory(PROJECT, python="3.9"), index, plan_index.url(), target).for_package("torch")
    assert torch is not None and torch.target == "2.8.0"
    assert torch.notes == ("2.11.0 closes 13 finding(s) but is not published for Python 3.9 on linux x86_64 "
                           "(8 closable without changing the build)",)  # fmt: skip
    companions = {c.package: (c.proposed, c.pairing) for c in torch.companions}
    # python 3.9 < 3.13: torch 2.8.0's marker on triton holds there
    assert companions == {"triton": ("3.4.0", "torch-pins"), "torchaudio": ("2.8.0", "declared"),
                          "torchvision": ("0.23.0", "declared"), "torchtext": ("0.18.0", "range")}  # fmt: skip


def test_variant_that_stops_is_reported_not_swapped(plan_index: PlanIndex, index: AdvisoryIndex) -> None:
    inv = inventory({**PROJECT, "torch": "2.5.1+cu121"}, index=plan_index.url("/whl/cu121"))
    torch = run_plan(inv, index, plan_index.url()).for_package("torch")
    assert torch is not None and torch.target is None  # the cu121 line ends at 2.5.1
    # on the default index alone, +cu121 files do not exist either: never a CPU/CUDA swap in silence
    torch = run_plan(inventory({**PROJECT, "torch": "2.5.1+cu121"}), index, plan_index.url()).for_package("torch")
    assert torch is not None and torch.target is None
    assert any("not published for the cu121 variant" in n for n in torch.notes)


def test_unreachable_index_leaves_companions_and_build_unknown(plan_index: PlanIndex, index: AdvisoryIndex) -> None:
    plan_index.down = True
    torch = run_plan(inventory(PROJECT), index, plan_index.url()).for_package("torch")
    assert torch is not None and torch.basis == "advisories" and torch.gap is not None
    assert torch.target is not None and any("unverified" in n for n in torch.notes)
    assert torch.build is not None and torch.build.status == "unknown"
    assert torch.build.detail.startswith("unknown (index unreachable since 2026-12-06 09:00:00 UTC")
    assert {c.pairing for c in torch.companions} == {"unknown"} and {c.proposed for c in torch.companions} == {None}


def test_a_stale_page_is_used_and_dated_when_the_index_goes_down(plan_index: PlanIndex, index: AdvisoryIndex) -> None:
    cache = MemoryCache()
    first = run_plan(inventory(PROJECT), index, plan_index.url(), cache=cache)
    plan_index.down = True
    later = run_plan(inventory(PROJECT), index, plan_index.url(), cache=cache, now=NOW + timedelta(days=1))
    assert later.for_package("torch") == first.for_package("torch")
    assert cache.pages[(plan_index.url(), "torch")].failing_since == NOW + timedelta(days=1)
    assert cache.pages[(plan_index.url(), "torch")].fetched_at == NOW


def test_scan_shows_the_plan_in_every_text_format(plan_index: PlanIndex, osv_dir: Path, tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text("".join(f"{n}=={v}\n" for n, v in PROJECT.items()))
    args = ["scan", str(lock), "--advisories", str(osv_dir), "--index", plan_index.url(), "--fail-on", "never"]
    runner = CliRunner()
    text = runner.invoke(main, [*args, "--format", "plan"], catch_exceptions=False).output
    assert "torch 2.5.1 -> 2.11.0 closes 13 (1 critical, 8 high, 4 medium); 9 without a fix" in text
    assert "companion torchvision 0.20.1 -> 0.26.0 (declared: torchvision 0.26.0 requires torch==2.11.0)" in text
    table = runner.invoke(main, [*args], catch_exceptions=False).output
    assert table.index("Plan (what to upgrade, to what):") < table.index("Vulnerable (")
    doc = json.loads(runner.invoke(main, [*args, "--format", "json"], catch_exceptions=False).stdout)
    plan = doc["targets"][0]["plan"]
    assert plan["packages"][0]["package"] == "torch" and plan["packages"][0]["target"] == "2.11.0"
    assert Plan.from_doc(plan).to_doc() == plan
    offline = runner.invoke(main, [*args[:4], "--index", "none", "--format", "plan", "--fail-on", "never"]).output
    assert "[unverified: index not read]" in offline and "unknown (index not read yet: --index none)" in offline
