"""Output formats of stack reports: text table, JSON, SARIF 2.1.0, CycloneDX 1.6."""

from __future__ import annotations
