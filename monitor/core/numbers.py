"""Numbers as people read them in notifications: no exponents for everyday magnitudes."""

from __future__ import annotations

import math


def readable(value: float) -> str:
    """12,345,678 for whole numbers, 0.9014 or 1,234.5 otherwise (four significant digits at least);
    an exponent only below 0.0001 or from 10^15 on, where digits would stop being readable."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    size = abs(value)
    if size != 0 and (size < 1e-4 or size >= 1e15):
        return f"{value:.4g}"
    if value == int(value):
        return f"{int(value):,}"
    decimals = max(0, 4 - int(math.floor(math.log10(size))) - 1) if size else 0
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
