"""torch's companions at versions that pair with a proposed torch, read from the index's metadata.

Which packages are companions is read from metadata too: a pinned package whose own Requires-Dist
names torch (torchvision, torchaudio, torchtext...), or a package the proposed torch itself pins with
`==` (triton, pytorch-triton-rocm). Only packages named `torch*` are asked about their requirements:
asking every package of an environment would cost one metadata read each.

Pairing, per companion, from its releases at or above the installed one, oldest first:
  - `torch==T` pins the proposed torch: declared pairing, the answer;
  - a range that allows T (`torch>=2.11`): allowed, not a declared pairing (said so);
  - `torch==X` with X above T: the pins went past T, no release pairs with it;
  - no torch requirement at all: noted, and the search goes on.
A companion that never pairs with T is a blocker, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from monitor.stack.inventory.target import Target
from monitor.stack.plan.build import BuildTarget, representative
from monitor.stack.plan.model import Companion, CoreMetadata, IndexFile, IndexGap, IndexLookup
from monitor.stack.versions import public_version

MAX_METADATA_READS = 40
"""Per companion: enough for every release line since torch 2.0, bounded for a broken index."""


def marker_target(target: BuildTarget) -> Target:
    return Target.declare(
        python_version=".".join((target.python or "3.12").split(".")[:2]),
        sys_platform=target.sys_platform or "linux",  # type: ignore[arg-type]
        platform_machine=target.machine or "x86_64",
    )


def requirements(meta: CoreMetadata, target: BuildTarget) -> list[Requirement]:
    """The Requires-Dist entries that apply on the target (no extras)."""
    env = marker_target(target)
    out = []
    for text in meta.requires_dist:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        applies = req.marker is None or ("extra" not in str(req.marker) and env.holds(str(req.marker)) is True)
        if applies:
            out.append(req)
    return out


def torch_requirement(meta: CoreMetadata, target: BuildTarget) -> Requirement | None:
    return next((r for r in requirements(meta, target) if canonicalize_name(r.name) == "torch"), None)


def exact_pin(req: Requirement) -> Version | None:
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return public_version(specs[0].version)
    return None


def pinned_by_torch(torch_meta: CoreMetadata, target: BuildTarget) -> dict[str, Version]:
    """Packages the torch wheel pins with `==` on the target (triton and friends)."""
    out: dict[str, Version] = {}
    for req in requirements(torch_meta, target):
        pin = exact_pin(req)
        if pin is not None:
            out[str(canonicalize_name(req.name))] = pin
    return out


def pair(
    name: str,
    installed: str,
    torch: Version,
    lookup: IndexLookup,
    target: BuildTarget,
    index_url: str | None = None,
) -> Companion | None:
    """The companion's release that pairs with `torch`; None when the package does not require torch."""
    listing = lookup.listing(name, index_url)
    if isinstance(listing, IndexGap):
        return Companion(name, installed, None, "unknown", "", gap=listing)
    current = public_version(installed)
    releases = listing.releases()
    ordered = sorted(v for v in releases if (current is None or v >= current) and not v.is_prerelease)
    reads = 0
    requires_torch = False
    silent: list[str] = []
    for version in ordered:
        file = representative(releases[version], target)
        if file is None:
            continue
        if reads >= MAX_METADATA_READS:
            return Companion(
                name, installed, None, "unknown", f"stopped after reading {reads} releases' metadata", "search bound"
            )
        reads += 1
        meta = lookup.metadata(file)
        if isinstance(meta, IndexGap):
            return Companion(name, installed, None, "unknown", f"metadata of {file.filename}", gap=meta)
        if meta is None:
            silent.append(f"{version} (no metadata file)")
            continue
        req = torch_requirement(meta, target)
        if req is None:
            silent.append(f"{version} (no torch requirement)")
            continue
        requires_torch = True
        pin = exact_pin(req)
        if pin is not None:
            if pin == torch:
                if version == current:
                    return Companion(name, installed, installed, "declared", f"{name} {version} requires {req}")
                return Companion(name, installed, str(version), "declared", f"{name} {version} requires {req}")
            if pin > torch:
                break
            continue
        if req.specifier.contains(torch, prereleases=True):
            return Companion(
                name,
                installed,
                str(version),
                "range",
                f"{name} {version} requires {req}: allows torch {torch} but does not declare the pairing",
            )
    if not requires_torch and not silent:
        return None
    if not requires_torch:
        return Companion(
            name,
            installed,
            None,
            "none",
            "; ".join(silent[:5]),
            f"no {name} release at or above {installed} declares a torch requirement to pair with {torch}",
        )
    last = max(releases) if releases else None
    return Companion(
        name,
        installed,
        None,
        "none",
        "; ".join(silent[:5]),
        f"no {name} release pairs with torch {torch} (latest on the index: {last})",
    )


def torch_companions(
    installed: Sequence[tuple[str, str]],
    torch: Version,
    torch_files: Sequence[IndexFile],
    lookup: IndexLookup,
    target: BuildTarget,
    index_urls: dict[str, str] | None = None,
    previous_pins: Mapping[str, Version] | None = None,
) -> tuple[list[Companion], list[str]]:
    """Companions of the project (installed (name, version) pairs) for the proposed torch;
    `previous_pins`: what the installed torch pins (a package it pinned that the proposed one drops
    is reported, not silently kept)."""
    previous_pins = previous_pins or {}
    notes: list[str] = []
    found: list[Companion] = []
    file = representative(list(torch_files), target)
    pins: dict[str, Version] = {}
    if file is not None:
        meta = lookup.metadata(file)
        if isinstance(meta, IndexGap):
            notes.append(f"torch {torch}'s own requirements: {meta.describe()}")
            for name, version in installed:
                if name in previous_pins:
                    found.append(Companion(name, version, None, "unknown", f"torch {torch}'s requirements", gap=meta))
        elif meta is None:
            notes.append(f"torch {torch}'s metadata is not served by the index ({file.filename}.metadata)")
        else:
            pins = pinned_by_torch(meta, target)
            for name, version in installed:
                if name in previous_pins and name not in pins:
                    found.append(
                        Companion(
                            name,
                            version,
                            None,
                            "dropped",
                            f"the installed torch pins {name}=={previous_pins[name]}; torch {torch} does not "
                            f"require {name} on {target.describe()}",
                        )
                    )
    for name, version in installed:
        if name in pins:
            pinned = pins[name]
            same = public_version(version) == pinned
            found.append(
                Companion(
                    name,
                    version,
                    version if same else str(pinned),
                    "torch-pins",
                    f"torch {torch} requires {name}=={pinned} on {target.describe()}",
                )
            )
    for name, version in installed:
        if name == "torch" or name in pins or name in previous_pins or not name.startswith("torch"):
            continue
        companion = pair(name, version, torch, lookup, target, (index_urls or {}).get(name))
        if companion is not None:
            found.append(companion)
    return found, notes
