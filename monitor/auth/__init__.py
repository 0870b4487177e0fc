"""Access control: API tokens (only their hash is stored), roles, and the append-only change log."""

from __future__ import annotations
