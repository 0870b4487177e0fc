"""The demo's cloud bill: a FOCUS 1.0 export written from the fleet, as a provider would deliver it.

One GPU row (p4d.24xlarge instance-hours, 8 GPUs each) and one storage row per project and day,
tagged `ml-project`, from `days` ago up to the current hour (today's rows cover the hours so far).
Pure but for `write_focus_csv`.
"""

from __future__ import annotations

import csv
import json
import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from monitor.demo.fleet import DemoProject

INSTANCE = "p4d.24xlarge"
INSTANCE_HOURLY = 32.7726
GPUS_PER_INSTANCE = 8
STORAGE_SHARE = 0.12
"""Storage and network beside the GPUs, as a share of the GPU spend."""

COLUMNS = (
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "BillingCurrency",
    "BillingAccountId",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeDescription",
    "ChargeFrequency",
    "ConsumedQuantity",
    "ConsumedUnit",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "InvoiceIssuerName",
    "RegionId",
    "ResourceId",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "SubAccountId",
    "SubAccountName",
    "Tags",
)


@dataclass(frozen=True, slots=True)
class DayUse:
    """One project's cloud use on one day (or the part of today so far)."""

    project: str
    day: date
    hours: float
    """Hours of the day covered (24, or fewer today)."""
    gpu_cost: float
    instance_hours: float

    @property
    def gpu_hours(self) -> float:
        return self.instance_hours * GPUS_PER_INSTANCE


def daily_use(fleet: Sequence[DemoProject], now: datetime, days: int) -> list[DayUse]:
    """Every project's use per day over the last `days` days and today so far."""
    today = now.astimezone(UTC).date()
    hours_today = (now.astimezone(UTC) - datetime.combine(today, time(), UTC)).total_seconds() / 3600
    out = []
    for project in fleet:
        for back in range(days, -1, -1):
            day = today - timedelta(days=back)
            covered = 24.0 if back else math.floor(hours_today)
            if covered <= 0:
                continue
            index = days - back
            # A working-week wobble keeps the history from looking drawn with a ruler.
            wobble = 1.0 + 0.06 * math.sin(index * 2.1 + len(project.id))
            full_day = project.gpu_daily * (1 + project.gpu_growth) ** index * wobble
            cost = round(full_day * covered / 24, 2)
            out.append(DayUse(project.id, day, covered, cost, round(cost / INSTANCE_HOURLY, 4)))
    return out


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def focus_rows(uses: Sequence[DayUse]) -> Iterator[dict[str, str]]:
    for use in uses:
        start = datetime.combine(use.day, time(), UTC)
        end = start + timedelta(hours=use.hours)
        period_start = start.replace(day=1)
        period_end = (period_start + timedelta(days=32)).replace(day=1)
        common = {
            "BillingCurrency": "USD",
            "BillingAccountId": "100000000001",
            "BillingPeriodStart": _stamp(period_start),
            "BillingPeriodEnd": _stamp(period_end),
            "ChargePeriodStart": _stamp(start),
            "ChargePeriodEnd": _stamp(end),
            "ChargeCategory": "Usage",
            "ChargeFrequency": "Usage-Based",
            "ProviderName": "AWS",
            "PublisherName": "Amazon Web Services, Inc.",
            "InvoiceIssuerName": "Amazon Web Services, Inc.",
            "RegionId": "us-east-1",
            "SubAccountId": "200000000002",
            "SubAccountName": "ml-training",
            "Tags": json.dumps({"ml-project": use.project, "environment": "prod"}),
        }
        gpu = f"{use.gpu_cost:.2f}"
        yield {
            **common,
            "BilledCost": gpu,
            "EffectiveCost": gpu,
            "ListCost": gpu,
            "ContractedCost": gpu,
            "ChargeDescription": f"${INSTANCE_HOURLY} per On Demand Linux {INSTANCE} Instance Hour",
            "ConsumedQuantity": f"{use.instance_hours:.4f}",
            "ConsumedUnit": "Hours",
            "PricingQuantity": f"{use.instance_hours:.4f}",
            "PricingUnit": "Hours",
            "ResourceId": f"i-{zlib.crc32(use.project.encode()):08x}",
            "ResourceType": "instance",
            "ServiceCategory": "Compute",
            "ServiceName": "Amazon Elastic Compute Cloud",
        }
        storage = f"{use.gpu_cost * STORAGE_SHARE:.2f}"
        gb_months = use.gpu_cost * STORAGE_SHARE / 0.023
        yield {
            **common,
            "BilledCost": storage,
            "EffectiveCost": storage,
            "ListCost": storage,
            "ContractedCost": storage,
            "ChargeDescription": "$0.023 per GB-month of storage used",
            "ConsumedQuantity": f"{gb_months:.4f}",
            "ConsumedUnit": "GB-Mo",
            "PricingQuantity": f"{gb_months:.4f}",
            "PricingUnit": "GB-Mo",
            "ResourceId": f"{use.project}-datasets",
            "ResourceType": "bucket",
            "ServiceCategory": "Storage",
            "ServiceName": "Amazon Simple Storage Service",
        }


def write_focus_csv(path: Path, uses: Sequence[DayUse]) -> Path:
    """Write the export atomically: the focus source never reads a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(focus_rows(uses))
    partial.replace(path)
    return path
