"""Model quality: accuracy collectors, baselines, drift."""

from __future__ import annotations
