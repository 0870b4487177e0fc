"""A project's plan: one entry per vulnerable package, torch's companions and build when torch moves.

Pure given an `IndexLookup`: the CLI passes a live client, the service one backed by the store's
cache. When the index cannot be read, the versions come from the advisories' `fixed` events and are
labelled unverified, and the companion and build columns say "unknown (...)", never a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from packaging.version import Version

from monitor.stack.advisories.severity import RANK
from monitor.stack.plan.build import BuildTarget, available, check, representative
from monitor.stack.plan.companions import pinned_by_torch, torch_companions
from monitor.stack.plan.model import (
    BuildCheck,
    Companion,
    Exposure,
    IndexGap,
    IndexLookup,
    Listing,
    PackagePlan,
    Plan,
)
from monitor.stack.plan.select import advisory_fixes, candidates_above, choose
from monitor.stack.versions import local_label, public_version

TORCH = "torch"


def build_plan(
    installed: Mapping[str, Sequence[str]],
    exposures: Mapping[str, Sequence[Exposure]],
    open_at: Callable[[str, str], frozenset[str]],
    lookup: IndexLookup,
    target: BuildTarget,
    *,
    index_url: str | None,
    index_urls: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Plan:
    """`installed`: every package of the project with its versions; `exposures`: its open findings
    by package; `open_at(package, version)`: the vulnerability keys affecting a version."""
    urls = dict(index_urls or {})
    order = sorted(exposures, key=lambda p: (-max(RANK.get(e.severity, 0) for e in exposures[p]), p))
    plans = []
    for package in order:
        versions = tuple(installed.get(package, ())) or ("?",)
        plans.append(_package_plan(package, versions, exposures[package], open_at, lookup, target, installed, urls))
    return Plan(tuple(plans), index_url, now)


def _package_plan(
    package: str,
    versions: tuple[str, ...],
    exposures: Sequence[Exposure],
    open_at: Callable[[str, str], frozenset[str]],
    lookup: IndexLookup,
    target: BuildTarget,
    installed: Mapping[str, Sequence[str]],
    urls: Mapping[str, str],
) -> PackagePlan:
    def at(version: str) -> frozenset[str]:
        return open_at(package, version)

    is_torch = package == TORCH
    variant = next((local_label(v) for v in versions if local_label(v)), None) if is_torch else None
    listing = lookup.listing(package, urls.get(package))
    if isinstance(listing, IndexGap):
        fixes = candidates_above(versions, advisory_fixes(exposures))
        plan = choose(package, versions, exposures, fixes, at, gap=listing)
        if is_torch:
            plan = replace(
                plan,
                build=BuildCheck("unknown", variant or "default", listing.describe(), gap=listing),
                companions=tuple(
                    Companion(n, vs[0], None, "unknown", "", gap=listing)
                    for n, vs in sorted(installed.items())
                    if n != TORCH and n.startswith(TORCH) and vs
                ),
            )
        return plan
    usable = available(listing, target, variant, strict_variant=is_torch)
    plan = choose(package, versions, exposures, candidates_above(versions, usable), at)
    if is_torch:
        wider = (
            (available(listing, target, variant, strict_variant=False), f"the {variant or 'default'} variant"),
            (list(listing.releases()), target.describe()),
        )
        plan = _build_gap(plan, package, versions, exposures, wider, at)
    if not is_torch or plan.target is None:
        return plan
    proposed = Version(plan.target)
    build = check(listing, proposed, variant, target)
    files = [f for f in listing.releases().get(proposed, ()) if f.local == variant]
    pairs = [(n, vs[0]) for n, vs in sorted(installed.items()) if vs]
    companions, notes = torch_companions(
        pairs, proposed, files, lookup, target, dict(urls), _current_pins(listing, versions, variant, target, lookup)
    )
    return replace(plan, build=build, companions=tuple(companions), notes=(*plan.notes, *notes))


def _build_gap(
    plan: PackagePlan,
    package: str,
    versions: tuple[str, ...],
    exposures: Sequence[Exposure],
    wider: Sequence[tuple[Sequence[Version], str]],
    at: Callable[[str], frozenset[str]],
) -> PackagePlan:
    """Say so when a release outside the project's build (another variant, another Python or
    platform) would close more than what the build can install."""
    for candidates, build in wider:
        every = choose(package, versions, exposures, candidates_above(versions, candidates), at)
        if every.target is not None and every.target != plan.target and len(every.closed) > len(plan.closed):
            note = (
                f"{every.target} closes {len(every.closed)} finding(s) but is not published for {build} "
                f"({len(plan.closed)} closable without changing the build)"
            )
            return replace(plan, notes=(*plan.notes, note))
    return plan


def _current_pins(
    listing: Listing, versions: Sequence[str], variant: str | None, target: BuildTarget, lookup: IndexLookup
) -> dict[str, Version]:
    """What the installed torch pins (`==`) on the target, read from its own metadata."""
    current = max((v for v in (public_version(x) for x in versions) if v is not None), default=None)
    if current is None:
        return {}
    files = listing.releases().get(current, [])
    file = representative([f for f in files if f.local == variant] or files, target)
    meta = lookup.metadata(file) if file is not None else None
    if meta is None or isinstance(meta, IndexGap):
        return {}
    return pinned_by_torch(meta, target)
