"""GPU spend and budgets: billing exports, OpenCost, DCGM, budgets, forecasts."""

from __future__ import annotations
