"""The store: every reading as a time-series sample, plus events, source runs and alert state.

SQLite (embedded, the default) or PostgreSQL, through SQLAlchemy 2 Core.
"""

from __future__ import annotations
