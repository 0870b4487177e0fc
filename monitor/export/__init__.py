"""Faces of mlmon for other tools: its rules as Prometheus alerting rules (`mlmon export ...`)."""

from __future__ import annotations
