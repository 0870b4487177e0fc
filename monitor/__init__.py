"""mlmon: the MLOps project health monitor (service core)."""

from __future__ import annotations

__version__ = "0.1.0"
