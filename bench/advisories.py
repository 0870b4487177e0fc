"""Advisory matching benchmark: 10,000 inventories of 300 packages against the whole offline database.

Inventories: torch at a version drawn from its real release history (../shared/data/pypi), with a
random build label (+cpu, +cu121, ... or none); transformers, numpy and pillow at versions drawn
from the advisory data itself (every version the records list or bound); the other packages are
drawn from a pool of names no advisory mentions, as in a real environment where most packages
have no advisory. The database is every record in ../shared/data/osv (159, withdrawn included).

Timed in one run, side by side:
  - the engine: `findings.find(inventory, AdvisoryIndex)` for every inventory (the index is built
    first and timed separately; its per-version cache starts empty);
  - the naive way: for each package of an inventory, walk every advisory record, compare names,
    parse the bounds and run OSV's evaluation. It is run on a sample of inventories (it is far too
    slow for all 10,000) and its per-inventory time is scaled up; the ratio compares per-inventory
    times. On the sample both ways must report the same (package, record) pairs.
Goal: all 10,000 inventories in <= 2 s. Figures are printed, never asserted.

    .venv/bin/python bench/advisories.py
    .venv/bin/python bench/advisories.py --inventories 2000 --naive-sample 10
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as `python bench/advisories.py`: the repository root makes `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bench.support import print_machine_speed
from monitor.stack.advisories.index import AdvisoryIndex
from monitor.stack.advisories.offline import load_offline
from monitor.stack.findings import find
from monitor.stack.inventory.model import Inventory, Package

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
LABELS = ("", "", "", "+cpu", "+cu118", "+cu121", "+cu124", "+cu126", "+rocm6.2")


def advisory_versions(docs: list[dict[str, Any]], package: str) -> list[str]:
    """Every version a record lists or uses as a bound, for one package (valid PEP 440 only)."""
    found: set[str] = set()
    for doc in docs:
        for affected in doc.get("affected") or []:
            if canonicalize_name(affected.get("package", {}).get("name", "")) != package:
                continue
            found.update(affected.get("versions") or [])
            for rng in affected.get("ranges") or []:
                for event in rng.get("events", []):
                    found.update(v for v in event.values() if v != "0")
    out = []
    for text in sorted(found):
        try:
            Version(text)
            out.append(text)
        except InvalidVersion:
            continue
    return out


def build_inventories(count: int, size: int, seed: int, docs: list[dict[str, Any]]) -> list[Inventory]:
    rng = random.Random(seed)
    torch_versions = list(json.loads((SHARED / "pypi" / "torch-releases.json").read_text())["releases"])
    others = {name: advisory_versions(docs, name) for name in ("transformers", "numpy", "pillow")}
    # A shared pool of packages without advisories, so 3,000,000 entries stay cheap to hold.
    pool = [Package(f"lib-{i:05d}", f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}", "bench")
            for i in range(20000)]  # fmt: skip
    inventories = []
    for _ in range(count):
        chosen = [Package("torch", rng.choice(torch_versions) + rng.choice(LABELS), "bench")]
        chosen += [Package(name, rng.choice(versions), "bench") for name, versions in others.items()]
        chosen += rng.sample(pool, size - len(chosen))
        inventories.append(Inventory("lockfile", "bench", tuple(chosen)))
    return inventories


# --- the naive way: every package against every record, parsing as it goes -----------------------


def naive_is_affected(doc: dict[str, Any], name: str, installed: str) -> bool | None:
    """OSV's IsVulnerable straight from the JSON (None when a bound is not PEP 440)."""
    if doc.get("withdrawn"):
        return False
    version = Version(Version(installed).public)
    undetermined = False
    for affected in doc.get("affected") or []:
        pkg = affected.get("package", {})
        if pkg.get("ecosystem") != "PyPI" or canonicalize_name(pkg.get("name", "")) != name:
            continue
        for listed in affected.get("versions") or []:
            try:
                if Version(listed) == version:
                    return True
            except InvalidVersion:
                continue
        for rng in affected.get("ranges") or []:
            if rng.get("type") not in ("ECOSYSTEM", "SEMVER"):
                continue
            try:
                events = []
                limits = []
                for event in rng["events"]:
                    ((kind, text),) = event.items()
                    if kind == "limit":
                        if "*" not in text:
                            limits.append(Version(text))
                        continue
                    events.append((kind, None if kind == "introduced" and text == "0" else Version(text)))
            except InvalidVersion:
                undetermined = True
                continue
            if limits and not any(version < limit for limit in limits):
                continue
            events.sort(key=lambda e: (e[1] is not None, e[1] or Version("0")))
            vulnerable = False
            for kind, bound in events:
                if kind == "introduced" and (bound is None or version >= bound):
                    vulnerable = True
                elif bound is not None and (
                    (kind == "fixed" and version >= bound) or (kind == "last_affected" and version > bound)
                ):
                    vulnerable = False
            if vulnerable:
                return True
    return None if undetermined else False


def naive_scan(inventory: Inventory, docs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    hits = set()
    for pkg in inventory.packages:
        for doc in docs:
            if naive_is_affected(doc, pkg.name, pkg.version) is not False:
                hits.add((pkg.name, doc["id"]))
    return hits


def engine_pairs(inventory: Inventory, index: AdvisoryIndex) -> set[tuple[str, str]]:
    pairs = set()
    for finding in find(inventory, index):
        pairs.update(
            (finding.package, m.advisory) for m in finding.members if m.verdict in ("affected", "undetermined")
        )
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventories", type=int, default=10000)
    parser.add_argument("--packages", type=int, default=300)
    parser.add_argument("--naive-sample", type=int, default=20, help="inventories the naive scan runs on")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--osv", type=Path, default=SHARED / "osv")
    args = parser.parse_args()

    loaded = load_offline(args.osv)
    docs = [dict(a.doc) for a in loaded.advisories]
    print(f"advisories: {len(docs)} records from {args.osv} ({len(loaded.rejected)} rejected)")
    started = time.perf_counter()
    inventories = build_inventories(args.inventories, args.packages, args.seed, docs)
    built = time.perf_counter() - started
    print(f"inventories: {len(inventories):,} x {args.packages} packages (built in {built:.1f}s, not timed)")

    t0 = time.perf_counter()
    index = AdvisoryIndex(loaded.advisories)
    build_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    findings = 0
    for inventory in inventories:
        findings += len(find(inventory, index))
    engine_seconds = time.perf_counter() - t0

    sample = inventories[: args.naive_sample]
    fresh = [Inventory(i.kind, i.location, i.packages) for i in sample]
    naive_times = []
    mismatches = 0
    for inventory, again in zip(sample, fresh, strict=True):
        t0 = time.perf_counter()
        expected = naive_scan(inventory, docs)
        naive_times.append(time.perf_counter() - t0)
        if expected != engine_pairs(again, index):
            mismatches += 1
    naive_per = statistics.fmean(naive_times)
    engine_per = engine_seconds / len(inventories)

    print()
    print(f"index build:           {build_seconds * 1000:8.1f} ms (once per advisory database revision)")
    print(f"engine:                {engine_seconds:8.3f} s for {len(inventories):,} inventories "
          f"= {len(inventories) / engine_seconds:,.0f} inventories/s ({findings:,} findings)")  # fmt: skip
    print(f"naive scan:            {naive_per * 1000:8.1f} ms per inventory (mean of {len(sample)}) "
          f"-> {naive_per * len(inventories):,.0f} s for {len(inventories):,} (scaled)")  # fmt: skip
    print(f"ratio naive / engine:  {naive_per / engine_per:8.0f}x per inventory")
    print(f"same results on the sample: {'yes' if mismatches == 0 else f'NO ({mismatches} differ)'}")
    print_machine_speed()
    goal = engine_seconds <= 2.0 * len(inventories) / 10000
    print(f"goal (10,000 in <= 2 s): {'met' if goal else 'NOT met'}")
    return 0 if goal and mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
