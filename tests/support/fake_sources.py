"""A test-only source kind, `fake`, whose `behaviour` param picks how it misbehaves.

Built per test through `FakeLab.kinds()` and handed to `Runtime.create(settings, kinds=...)`, so the
real config checks, plans, runner and scheduler run it. The lab counts calls per source and holds
the event that hung collectors wait on; `release()` it when the test ends.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

from collectors.base import (
    CollectContext,
    CollectResult,
    EventDraft,
    Params,
    Reading,
    SourceError,
    SourceKind,
)

Behaviour = Literal[
    "ok",
    "raise",
    "huge_error",
    "source_error",
    "exit",
    "hang",
    "nan",
    "string_value",
    "bad_metric",
    "reserved_label",
    "not_result",
    "none",
    "future",
    "naive_ts",
    "readings_tuple",
    "bad_event",
    "long_event_kind",
    "bad_checkpoint",
    "nan_checkpoint",
    "future_event",
    "trigger_rejects",
]


REJECTED_SUBJECT = "rejected-by-trigger"


class FakeParams(Params):
    behaviour: Behaviour = "ok"


def good(ctx: CollectContext) -> Reading:
    return Reading("fake_reading", 1.0, {"source": ctx.source})


def _garbage(*bad: Reading, **extra: Any) -> Callable[[CollectContext], object]:
    """A valid reading followed by bad ones, and a checkpoint: none of it may be stored."""

    def collect(ctx: CollectContext) -> object:
        return CollectResult([good(ctx), *bad], checkpoint={"cursor": 7}, **extra)

    return collect


def _raise(exc: BaseException) -> Callable[[CollectContext], object]:
    def collect(_ctx: CollectContext) -> object:
        raise exc

    return collect


def _future(ctx: CollectContext) -> object:
    return CollectResult([good(ctx), Reading("accuracy", 0.9, ts=ctx.now + timedelta(hours=2))])


def _naive(ctx: CollectContext) -> object:
    return CollectResult([good(ctx), Reading("accuracy", 0.9, ts=ctx.now.replace(tzinfo=None))])


BEHAVIOURS: dict[str, Callable[[CollectContext], object]] = {
    "ok": lambda ctx: CollectResult([good(ctx)], checkpoint={"runs": int(ctx.checkpoint.get("runs", 0)) + 1}),
    "raise": _raise(RuntimeError("collector exploded")),
    "huge_error": _raise(SourceError("bomb: " + "lol " * 1_000_000)),
    "source_error": _raise(SourceError("upstream said no")),
    "exit": _raise(SystemExit(3)),
    "nan": _garbage(Reading("accuracy", math.nan)),
    "string_value": _garbage(Reading("accuracy", "0.9")),  # type: ignore[arg-type]
    "bad_metric": _garbage(Reading("trainAcc", 0.9)),
    "reserved_label": _garbage(Reading("accuracy", 0.9, {"project": "other"})),
    "not_result": lambda ctx: {"accuracy": 0.9},
    "none": lambda ctx: None,
    "future": _future,
    "naive_ts": _naive,
    "readings_tuple": lambda ctx: CollectResult((good(ctx),)),  # type: ignore[arg-type]
    "bad_event": _garbage(events=["model changed"]),  # type: ignore[list-item]
    "long_event_kind": _garbage(events=[EventDraft("k" * 65, "model")]),
    "bad_checkpoint": lambda ctx: CollectResult([good(ctx)], checkpoint={"at": object()}),
    "nan_checkpoint": lambda ctx: CollectResult([good(ctx)], checkpoint={"loss": math.nan}),
    "future_event": lambda ctx: CollectResult(
        [good(ctx)], events=[EventDraft("deploy", "model", ts=ctx.now + timedelta(hours=2))]
    ),
    # Valid output that a database trigger installed by the test refuses to store.
    "trigger_rejects": lambda ctx: CollectResult([good(ctx)], events=[EventDraft("note", REJECTED_SUBJECT)]),
}


class FakeLab:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.hang = threading.Event()
        self._lock = threading.Lock()

    def release(self) -> None:
        self.hang.set()

    def count(self, source: str) -> int:
        with self._lock:
            return self.calls[source]

    def kinds(self) -> dict[str, SourceKind[Any]]:
        return {"fake": SourceKind("fake", FakeParams, lambda p: FakeCollector(p, self), "test-only")}


class FakeCollector:
    def __init__(self, params: FakeParams, lab: FakeLab) -> None:
        self.params = params
        self.lab = lab

    def collect(self, ctx: CollectContext) -> CollectResult:
        with self.lab._lock:
            self.lab.calls[ctx.source] += 1
        if self.params.behaviour == "hang":
            self.lab.hang.wait(120)
            return CollectResult([good(ctx)])
        return BEHAVIOURS[self.params.behaviour](ctx)  # type: ignore[return-value]
