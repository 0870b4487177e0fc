"""What one FOCUS value means: nulls, timestamps, tags, GPU rows, hours. Pure, cached per distinct value.

Real exports differ in small ways (see ../shared/data/billing/focus/README.md): nulls are the
bare token `NULL` or an empty string; datetimes are ISO 8601 or `2024-09-18 22:00:00` (UTC, no
`T`/`Z`); `Tags` is a JSON object in one cell, with keys such as `" org"` (a stray space) or
`user:team` (AWS cost allocation tags); units are `Hours`, `Hrs`, `hour`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from collectors.base import SourceError
from collectors.spend.gpu_families import find_gpu_instance

NULLS = ("NULL", "null", "")
MANDATORY = ("BilledCost", "EffectiveCost", "BillingCurrency", "ChargePeriodStart", "ChargePeriodEnd")
"""FOCUS columns a file must have (all are mandatory in FOCUS 1.0-1.2)."""
COST_COLUMNS = ("BilledCost", "EffectiveCost")
QUANTITY_COLUMNS = ("ConsumedQuantity", "PricingQuantity")
USAGE_PAIRS = (("ConsumedQuantity", "ConsumedUnit"), ("PricingQuantity", "PricingUnit"))
"""Read when present (the first pair a file has), with SkuPriceDetails and ChargeDescription:
they tell GPU rows and GPU-hours apart."""
TAGS = "Tags"

_HOURS = re.compile(r"^(?:1\s*)?(?:hours?|hrs?|h)$|^(?:instance|gpu|node)[ -]?hours?$", re.IGNORECASE)


class FocusFileError(SourceError):
    """A FOCUS file that cannot be read as such; the message names file, row and column."""

    def __init__(self, path: str, message: str, row: int | None = None, column: str | None = None) -> None:
        self.path, self.row, self.column, self.detail = path, row, column, message
        where = ", ".join(p for p in (f"row {row}" if row else "", f"column {column}" if column else "") if p)
        super().__init__(f"{path}: {where + ': ' if where else ''}{message}")


class ValueProblem(ValueError):
    """A value that does not mean what its column requires; the message says what was expected."""


def parse_timestamp(text: str) -> datetime:
    """An aware UTC datetime from ISO 8601 or `2024-09-18 22:00:00` (FOCUS datetimes are UTC)."""
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueProblem(
            f"expected a date-time like 2024-09-18T22:00:00Z or 2024-09-18 22:00:00, got {text!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def local_date_of(value: Any, tz: tzinfo) -> date:
    """The day (in `tz`) a charge period start falls on; `value` is text or a datetime."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, str):
        moment = parse_timestamp(value)
    else:
        raise ValueProblem(f"expected a date-time, got {type(value).__name__} {value!r}")
    return moment.astimezone(tz).date()


def parse_tags(text: str) -> dict[str, str]:
    """The `Tags` JSON object; values are kept as text."""
    try:
        parsed = json.loads(text)
    except ValueError:
        raise ValueProblem(f"expected a JSON object of tags, got {text[:80]!r}") from None
    if not isinstance(parsed, dict):
        raise ValueProblem(f"expected a JSON object of tags, got {type(parsed).__name__} {text[:80]!r}")
    return {str(k): "" if v is None else str(v) for k, v in parsed.items()}


def tag_value(tags: dict[str, str], key: str) -> str | None:
    """The value of tag `key`: exact key, else a key equal once stripped (`" org"`), else a
    provider-prefixed key (`user:ml-project` for `ml-project`)."""
    if key in tags:
        return tags[key]
    for name, value in tags.items():
        if name.strip() == key:
            return value
    if ":" not in key:
        for name, value in tags.items():
            if name.strip().endswith(":" + key):
                return value
    return None


def tag_key(configured: str) -> str:
    """`Tags.ml-project` and `ml-project` both name the tag `ml-project`."""
    return configured[len("Tags.") :] if configured.startswith("Tags.") else configured


def is_hours(unit: str | None) -> bool:
    return unit is not None and bool(_HOURS.match(unit.strip()))


@dataclass(frozen=True, slots=True)
class GpuClass:
    """Whether a row is GPU spend, and GPUs per unit of its quantity when known."""

    gpu: bool
    gpus: float | None = None


NOT_GPU = GpuClass(False)


def _details(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        parsed = json.loads(text)
    except ValueError:
        raise ValueProblem(f"expected a JSON object of SKU price details, got {text[:80]!r}") from None
    if not isinstance(parsed, dict):
        raise ValueProblem(f"expected a JSON object of SKU price details, got {text[:80]!r}")
    return parsed


def classify_gpu(sku_price_details: str | None, description: str | None, overrides: dict[str, float]) -> GpuClass:
    """GPU rows: `SkuPriceDetails.GpuCount` (FOCUS 1.1+, `F_GpuCount` in later drafts) decides when
    present; otherwise the instance type (`SkuPriceDetails.InstanceType` or one named in
    `ChargeDescription`) is looked up in the maintained table."""
    details = _details(sku_price_details)
    for key in ("GpuCount", "F_GpuCount"):
        if key in details and details[key] is not None:
            try:
                count = float(details[key])
            except (TypeError, ValueError):
                raise ValueProblem(f"SkuPriceDetails.{key} must be a number, got {details[key]!r}") from None
            return GpuClass(True, count) if count > 0 else NOT_GPU
    for key in ("InstanceType", "F_InstanceType"):
        instance = details.get(key)
        if isinstance(instance, str) and instance:
            found = find_gpu_instance(instance, overrides)
            return GpuClass(True, found.gpus) if found else NOT_GPU
    if description:
        found = find_gpu_instance(description, overrides)
        if found is not None:
            return GpuClass(True, found.gpus)
    return NOT_GPU
