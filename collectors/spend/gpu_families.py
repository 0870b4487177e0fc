"""The maintained table of GPU instance types: which billing rows are GPU spend, and how many GPUs.

Used when a FOCUS row has no `SkuPriceDetails.GpuCount` (FOCUS 1.0 has no such column): the
instance type is taken from `SkuPriceDetails.InstanceType` or read out of `ChargeDescription`
("$1.624 per On Demand Linux g5.4xlarge Instance Hour"). Counts are GPUs per instance, from the
providers' instance-type pages (AWS accelerated computing, Azure N-series, GCP accelerator-
optimised and G2, OCI GPU shapes); fractional GPUs (AWS g6f, Azure NVadsA10) are fractions.

A source may extend or override the table (`gpu_instances: {"x9.big": 4, "g7": 1, "g4ad": 0}`):
a full type or a whole family, 0 meaning "not a GPU instance".

Update when providers add types; an unknown size of a known family still counts as GPU spend,
only its GPU-hours are left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_STANDARD_SIZES = {
    "xlarge": 1,
    "2xlarge": 1,
    "4xlarge": 1,
    "8xlarge": 1,
    "16xlarge": 1,
    "12xlarge": 4,
    "24xlarge": 4,
    "48xlarge": 8,
}

AWS: dict[str, dict[str, float]] = {
    "p2": {"xlarge": 1, "8xlarge": 8, "16xlarge": 16},
    "p3": {"2xlarge": 1, "8xlarge": 4, "16xlarge": 8},
    "p3dn": {"24xlarge": 8},
    "p4d": {"24xlarge": 8},
    "p4de": {"24xlarge": 8},
    "p5": {"4xlarge": 1, "48xlarge": 8},
    "p5e": {"48xlarge": 8},
    "p5en": {"48xlarge": 8},
    "p6-b200": {"48xlarge": 8},
    "p6e-gb200": {"36xlarge": 4},
    "g2": {"2xlarge": 1, "8xlarge": 4},
    "g3": {"4xlarge": 1, "8xlarge": 2, "16xlarge": 4},
    "g3s": {"xlarge": 1},
    "g4dn": {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1, "12xlarge": 4, "metal": 8},
    "g4ad": {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 2, "16xlarge": 4},
    "g5": dict(_STANDARD_SIZES),
    "g5g": {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 2, "metal": 2},
    "g6": dict(_STANDARD_SIZES),
    "g6e": dict(_STANDARD_SIZES),
    "g6f": {"large": 0.125, "xlarge": 0.125, "2xlarge": 0.25, "4xlarge": 0.5},
    "gr6": {"4xlarge": 1, "8xlarge": 1},
    "gr6f": {"4xlarge": 0.5},
}  # fmt: skip
"""AWS EC2 (and SageMaker `ml.` variants): family -> size -> GPUs."""

AZURE: dict[str, float] = {
    "nc6": 1, "nc12": 2, "nc24": 4, "nc24r": 4,
    "nc6s_v2": 1, "nc12s_v2": 2, "nc24s_v2": 4, "nc24rs_v2": 4,
    "nc6s_v3": 1, "nc12s_v3": 2, "nc24s_v3": 4, "nc24rs_v3": 4,
    "nc4as_t4_v3": 1, "nc8as_t4_v3": 1, "nc16as_t4_v3": 1, "nc64as_t4_v3": 4,
    "nc24ads_a100_v4": 1, "nc48ads_a100_v4": 2, "nc96ads_a100_v4": 4,
    "nc40ads_h100_v5": 1, "nc80adis_h100_v5": 2,
    "nd6s": 1, "nd12s": 2, "nd24s": 4, "nd24rs": 4, "nd40rs_v2": 8,
    "nd96asr_v4": 8, "nd96amsr_a100_v4": 8, "nd96isr_h100_v5": 8, "nd96isr_h200_v5": 8,
    "nv6": 1, "nv12": 2, "nv24": 4, "nv12s_v3": 1, "nv24s_v3": 2, "nv48s_v3": 4,
    "nv6ads_a10_v5": 1 / 6, "nv12ads_a10_v5": 1 / 3, "nv18ads_a10_v5": 0.5,
    "nv36ads_a10_v5": 1, "nv36adms_a10_v5": 1, "nv72ads_a10_v5": 2,
}  # fmt: skip
"""Azure N-series VM sizes (without `Standard_`, lower case) -> GPUs."""

GCP_G2 = {"4": 1, "8": 1, "12": 1, "16": 1, "24": 2, "32": 1, "48": 4, "96": 8}
"""GCP g2-standard-N -> GPUs (a2/a3/a4 types carry the count in their name: a2-highgpu-4g)."""

_AWS = re.compile(
    r"(?<![\w-])(?P<family>[a-z]+\d+[a-z0-9]*(?:-[a-z0-9]+)?)\.(?P<size>\d*x?large|metal(?:-\d+xl)?|medium|small|micro|nano)\b"
)
_AZURE = re.compile(r"(?:standard_)?(?P<size>n[cdv]\d+[a-z]*(?:[_ ][a-z0-9]+)*)", re.IGNORECASE)
_GCP_ACCEL = re.compile(r"\b(?P<series>a[234])-(?:high|mega|ultra|edge)gpu-(?P<count>\d+)g\b")
_GCP_G2 = re.compile(r"\bg2-standard-(?P<vcpus>\d+)\b")
_OCI = re.compile(r"\b(?:BM|VM)\.GPU[\w.-]*?\.(?P<count>\d+)\b")


@dataclass(frozen=True, slots=True)
class GpuInstance:
    """A GPU instance type found in a billing row; `gpus` None when its size is not in the table."""

    instance: str
    gpus: float | None


def _override(overrides: Mapping[str, float], *keys: str | None) -> float | None:
    """The count a source declares for a type or its family (0: not a GPU), or None."""
    for key in keys:
        if key is not None and key in overrides:
            return overrides[key]
    return None


def _decide(instance: str, declared: float | None, table: float | None, known: bool) -> GpuInstance | None:
    if declared is not None:
        return GpuInstance(instance, declared) if declared > 0 else None
    return GpuInstance(instance, table) if known else None


def _azure_size(words: str) -> str | None:
    """The longest prefix of `NC24ads A100 v4 Low Priority` that is an Azure size in the table."""
    tokens = re.split(r"[_ ]+", words.lower())
    for length in range(len(tokens), 0, -1):
        candidate = "_".join(tokens[:length])
        if candidate in AZURE:
            return candidate
    return None


def find_gpu_instance(text: str, overrides: Mapping[str, float] | None = None) -> GpuInstance | None:
    """The GPU instance type named in `text` (an instance type or a charge description), if any."""
    overrides = overrides or {}
    lowered = text.lower()
    for found in _AWS.finditer(lowered):
        family, size = found.group("family"), found.group("size")
        instance = f"{family}.{size}"
        declared = _override(overrides, instance, family)
        if declared is not None or family in AWS:
            return _decide(instance, declared, AWS.get(family, {}).get(size), True)
    for found in _GCP_ACCEL.finditer(lowered):
        instance = found.group(0)
        return _decide(instance, _override(overrides, instance), float(found.group("count")), True)
    for found in _GCP_G2.finditer(lowered):
        instance = found.group(0)
        return _decide(instance, _override(overrides, instance, "g2-standard"), GCP_G2.get(found.group("vcpus")), True)
    for found in _OCI.finditer(text):
        instance = found.group(0)
        return _decide(instance, _override(overrides, instance.lower()), float(found.group("count")), True)
    for found in _AZURE.finditer(text):
        size = _azure_size(found.group("size"))
        raw = re.sub(r"[ ]+", "_", found.group("size").lower())
        declared = _override(overrides, f"standard_{raw}", raw)
        if declared is not None or size is not None:
            instance = f"standard_{size or raw}"
            return _decide(instance, declared, AZURE.get(size or ""), True)
    for instance, count in overrides.items():
        if count > 0 and re.search(rf"(?<![\w.-]){re.escape(instance.lower())}(?![\w-])", lowered):
            return GpuInstance(instance, count)
    return None


def candidate_pattern(overrides: Mapping[str, float] | None = None) -> str:
    """A regular expression (RE2 and Python alike) that every text `find_gpu_instance` could find
    a GPU instance in matches: a cheap test that spares the full lookup for the rows it rules out
    (most billing rows are storage, network, CPU instances). A superset, never a subset: kept
    next to the tables it is built from, and tested against them."""
    families = sorted(AWS, key=len, reverse=True)
    parts = ["gpu", "g2-standard", r"n[cdv]\d", r"(?:" + "|".join(re.escape(f) for f in families) + r")\."]
    parts += [re.escape(name) for name in sorted(overrides or {}) if name]
    return "(?i)" + "|".join(parts)
