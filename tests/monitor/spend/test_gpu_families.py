"""The maintained GPU instance table: which billing rows are GPU spend, and how many GPUs."""

from __future__ import annotations

import pytest

from collectors.spend.focus_rows import classify_gpu, is_hours
from collectors.spend.gpu_families import GpuInstance, find_gpu_instance
from tests.monitor.spend.focus_data import read_rows, sample_csv


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$1.624 per On Demand Linux g5.4xlarge Instance Hour", GpuInstance("g5.4xlarge", 1)),
        ("$1.14 per On Demand Linux g3.4xlarge Instance Hour", GpuInstance("g3.4xlarge", 1)),
        ("ml.p4d.24xlarge", GpuInstance("p4d.24xlarge", 8)),
        ("p6-b200.48xlarge", GpuInstance("p6-b200.48xlarge", 8)),
        ("g5.99xlarge", GpuInstance("g5.99xlarge", None)),  # a GPU family, a size not in the table
        ("Standard_NC24ads_A100_v4", GpuInstance("standard_nc24ads_a100_v4", 1)),
        ("NC6s v3 Low Priority", GpuInstance("standard_nc6s_v3", 1)),
        ("ND96isr H100 v5", GpuInstance("standard_nd96isr_h100_v5", 8)),
        ("a2-highgpu-4g", GpuInstance("a2-highgpu-4g", 4)),
        ("g2-standard-24", GpuInstance("g2-standard-24", 2)),
        ("BM.GPU.A100-v2.8", GpuInstance("BM.GPU.A100-v2.8", 8)),
        ("VM.GPU.A10.1", GpuInstance("VM.GPU.A10.1", 1)),
        ("m5.xlarge", None),
        ("Standard - E3 - Memory", None),
        ("Tiered Block Blob - LRS - List and Create Container Operations", None),
    ],
)
def test_instance_types_in_charge_descriptions(text: str, expected: GpuInstance | None) -> None:
    assert find_gpu_instance(text) == expected


def test_a_source_can_extend_and_override_the_table() -> None:
    assert find_gpu_instance("x9.big in us-east-1", {"x9.big": 4}) == GpuInstance("x9.big", 4)
    assert find_gpu_instance("g4ad.xlarge", {"g4ad": 0}) is None
    assert find_gpu_instance("m5.xlarge", {"m5.xlarge": 1}) == GpuInstance("m5.xlarge", 1)


def test_in_the_real_sample_only_the_gpu_instance_descriptions_match() -> None:
    _, rows = read_rows(sample_csv())
    matched = {r["ChargeDescription"] for r in rows if find_gpu_instance(r["ChargeDescription"])}
    assert matched == {
        "$1.624 per On Demand Linux g5.4xlarge Instance Hour",
        "$1.14 per On Demand Linux g3.4xlarge Instance Hour",
    }


def test_sku_price_details_and_units() -> None:
    assert classify_gpu('{"GpuCount": 2}', "anything", {}).gpus == 2
    assert not classify_gpu('{"GpuCount": 0, "InstanceType": "p5.48xlarge"}', None, {}).gpu
    assert classify_gpu('{"F_InstanceType": "p5.48xlarge"}', None, {}).gpus == 8
    assert classify_gpu(None, "m5.large usage", {}).gpu is False
    assert [is_hours(u) for u in ("Hours", "Hrs", "1 Hour", "hour", "GB", "GB-Months", None)] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
    ]


def test_the_candidate_pattern_matches_every_instance_the_table_knows() -> None:
    """The SQL prefilter may let non-GPU rows through, never hold a GPU row back."""
    import re

    from collectors.spend.gpu_families import AWS, AZURE, GCP_G2, candidate_pattern

    pattern = re.compile(candidate_pattern({"x9.big": 4, "trn-special": 1}))
    texts = [f"{family}.{size}" for family, sizes in AWS.items() for size in sizes]
    texts += [f"ml.{family}.{size}" for family, sizes in AWS.items() for size in sizes]
    texts += [f"Standard_{size.upper()}" for size in AZURE] + ["NC24ads A100 v4 Low Priority"]
    texts += [f"g2-standard-{n}" for n in GCP_G2] + [
        "a2-highgpu-4g",
        "a3-megagpu-8g",
        "BM.GPU.H100.8",
        "x9.big",
        "TRN-SPECIAL",
    ]
    texts += ["$1.624 per On Demand Linux g5.4xlarge Instance Hour"]
    for text in texts:
        assert find_gpu_instance(text, {"x9.big": 4, "trn-special": 1}) is not None or text.startswith("NC24ads"), text
        assert pattern.search(text), text
    assert not pattern.search("$0.0104 per On Demand Linux t3.micro Instance Hour")
