"""PyTorch stack health: inventory, advisories, staleness, patch SLA."""

from __future__ import annotations
