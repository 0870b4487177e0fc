"""Pure core: value types, clocks, durations, matchers and naming rules. No I/O lives here."""

from __future__ import annotations
