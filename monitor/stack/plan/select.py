"""The lowest version that closes all of a package's fixable findings.

Every candidate is evaluated against every advisory of the package (through the caller's `open_at`,
which is the advisory index's own matching), never by trusting `fixed` strings: ranges can be
disjoint, fixes can regress, and an advisory the project is not exposed to today may affect the
candidate. A finding is fixable when some candidate is free of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from packaging.version import Version

from monitor.stack.advisories.severity import RANK
from monitor.stack.plan.model import Exposure, IndexGap, PackagePlan, by_severity
from monitor.stack.versions import parse_version, public_version


def candidates_above(installed: Iterable[str], versions: Iterable[Version]) -> list[Version]:
    """Public versions above every installed one, oldest first; pre-releases only when one is installed."""
    current = [v for v in (public_version(i) for i in installed) if v is not None]
    floor = max(current) if current else None
    allow_pre = any(v.is_prerelease for v in current)
    out = {
        v for v in versions if (floor is None or v > floor) and (allow_pre or not (v.is_prerelease or v.is_devrelease))
    }
    return sorted(out)


def choose(
    package: str,
    installed: Sequence[str],
    exposures: Sequence[Exposure],
    candidates: Sequence[Version],
    open_at: Callable[[str], frozenset[str]],
    *,
    gap: IndexGap | None = None,
    notes: Sequence[str] = (),
) -> PackagePlan:
    """The plan of one package. `candidates` are the versions allowed (listed and published for the
    build, or, with `gap`, the advisories' fixed versions); `open_at(version)` the vulnerability keys
    affecting or undetermined at a version."""
    keys = {e.key: e for e in exposures}
    opens = [(c, open_at(str(c))) for c in candidates]
    fixable = {k for k in keys if any(k not in found for _, found in opens)}
    unfixable = [keys[k] for k in keys if k not in fixable]
    # An advisory the project is not exposed to today that affects every candidate cannot block one.
    everywhere = frozenset.intersection(*(found for _, found in opens)) if opens else frozenset()
    tolerated = everywhere | {e.key for e in unfixable}
    target = next((c for c, found in opens if found <= tolerated), None)
    still_open: list[Exposure] = []
    plan_notes = list(notes)
    if target is None and fixable:
        # No single listed version closes them all: propose the one that closes the most, worst first.
        def score(item: tuple[Version, frozenset[str]]) -> tuple[int, int, int]:
            closed = [keys[k] for k in fixable if k not in item[1]]
            return (-sum(RANK[e.severity] for e in closed), len(item[1] - tolerated), opens.index(item))

        target, found = min(opens, key=score)
        still_open = [keys[k] for k in fixable if k in found]
        plan_notes.append(f"no single version closes every fixable finding; {target} closes the most")
    target_open = open_at(str(target)) if target is not None else frozenset(keys)
    closed = [e for e in exposures if e.key not in target_open]
    inferred = [e.key for e in closed if target is not None and not _has_fix_at_or_below(e, target)]
    if gap is not None and target is not None:
        plan_notes.append(f"unverified: {target} is the lowest advisory fix, not checked against the index")
    return PackagePlan(
        package=package,
        installed=tuple(installed),
        target=str(target) if target is not None and closed else None,
        basis="advisories" if gap is not None else "index",
        closes=by_severity(closed),
        closed=tuple(e.key for e in closed),
        inferred=tuple(inferred),
        unfixable=tuple(e.key for e in unfixable),
        unfixable_counts=by_severity(unfixable),
        still_open=tuple(e.key for e in still_open),
        worst=max((e.severity for e in exposures), key=lambda s: RANK.get(s, 0), default="unknown"),
        findings=len(exposures),
        notes=tuple(plan_notes),
        gap=gap,
    )


def _has_fix_at_or_below(exposure: Exposure, target: Version) -> bool:
    fixes = [v for v in (parse_version(f) for f in exposure.fix_versions) if v is not None]
    return any(f <= target for f in fixes)


def advisory_fixes(exposures: Iterable[Exposure]) -> list[Version]:
    """Every `fixed` version the advisories name (the unverified fallback's candidates)."""
    found = {public_version(f) for e in exposures for f in e.fix_versions}
    return sorted(v for v in found if v is not None)
