"""The `mlmon` command line: `main` and one module of commands per family."""

from __future__ import annotations

from monitor.cli.main import main

__all__ = ["main"]
