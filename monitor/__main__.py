"""`python -m monitor ...` is the `mlmon` command."""

from __future__ import annotations

from monitor.cli import main

main(prog_name="mlmon")
