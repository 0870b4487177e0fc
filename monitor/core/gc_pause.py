"""Pausing Python's cyclic garbage collector around bursts that build large, acyclic working sets.

An ingest batch, an evaluation cycle, a page of a thousand scorecards and an audit report each
build hundreds of thousands of small container objects that live until the work ends and form no
reference cycles. With the collector on, young collections promote them and full collections of
the whole heap follow, which more than doubled each of those in their benchmarks. Reference
counting still frees everything when the work ends.

One counter for the whole process: pauses nest and overlap across threads (an ingest during an
evaluation cycle), and only the last one out restores the collector, to the state the first one
in found.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the duration of the block."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
