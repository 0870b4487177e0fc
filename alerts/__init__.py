"""The alert engine: rule kinds, the alert lifecycle, routing, silences and notification delivery."""

from __future__ import annotations
