"""Source runs as jobs on a PostgreSQL queue, shared by every `mlmon worker` (procrastinate).

On PostgreSQL the leader's scheduler enqueues each due run instead of running it; every worker
takes runs from the queues it serves (`SELECT ... FOR UPDATE SKIP LOCKED` inside procrastinate's
fetch function), so N workers share the load and each run is executed once. SQLite (`mlmon
serve`, the embedded default) keeps running everything in-process. See docs/workers.md.
"""

from __future__ import annotations
