"""The HTTP API (FastAPI). Routes stay thin: they call the store and runtime, and one set of
exception handlers maps mlmon's errors to HTTP answers."""

from __future__ import annotations
