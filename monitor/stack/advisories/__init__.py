"""OSV advisories: records, matching, severity, offline databases and the live OSV API."""

from __future__ import annotations
