"""Reliable delivery from the outbox: claim due notifications, send, and on failure retry with
exponential backoff and jitter (connection errors, timeouts, 5xx, 429) or keep them as failed
with the receiver's answer (other 4xx). Every attempt carries the notification's idempotency key,
so a receiver can drop the duplicate that at-least-once delivery may produce.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.notify.base import Sender, SendResult
from alerts.store import OutboxItem, OutboxStore
from monitor.config.models import MlmonConfig
from monitor.core.clock import Clock
from monitor.store.store import Store

log = logging.getLogger("mlmon.alerts.delivery")

LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class Backoff:
    first: float = 0.5
    factor: float = 1.5
    cap: float = 300.0
    jitter: float = 0.2
    give_up_after: timedelta = timedelta(hours=24)

    def delay(self, attempts: int, rng: random.Random) -> float:
        base = min(self.cap, self.first * self.factor ** max(0, attempts - 1))
        return base * rng.uniform(1 - self.jitter, 1 + self.jitter)


@dataclass
class DeliveryStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0


Observer = Callable[[str, str, float], None]
"""(integration, outcome: sent | retry | failed, seconds) for telemetry."""


class Deliverer:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        config: Callable[[], MlmonConfig],
        senders: Mapping[str, Sender],
        backoff: Backoff | None = None,
        env: Mapping[str, str] | None = None,
        observe: Observer | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.outbox = OutboxStore(store.engine)
        self.clock = clock
        self.config = config
        self.senders = senders
        self.backoff = backoff or Backoff()
        self.env = env if env is not None else os.environ
        self.observe = observe
        self.rng = rng or random.Random()

    def deliver_due(self) -> DeliveryStats:
        stats = DeliveryStats()
        for item in self.outbox.claim_due(self.clock.now(), LEASE):
            self._deliver(item, stats)
        return stats

    def next_due(self) -> datetime | None:
        return self.outbox.next_due()

    def _deliver(self, item: OutboxItem, stats: DeliveryStats) -> None:
        started = self.clock.now()
        receiver = self.config().receiver(item.receiver)
        sender = self.senders.get(item.integration)
        if receiver is None or sender is None:
            result = SendResult.permanent(
                f"receiver {item.receiver!r} / integration {item.integration!r} is no longer configured"
            )
        else:
            try:
                result = sender(item, receiver, self.env)
            except Exception as exc:
                log.exception("sender %s crashed", item.integration)
                result = SendResult.retryable(f"{item.integration}: {type(exc).__name__}: {exc}")
        now = self.clock.now()
        elapsed = (now - started).total_seconds()
        if result.ok:
            self.outbox.mark_sent(item.id, now)
            stats.sent += 1
            outcome = "sent"
            log.info("notification %s delivered: %s", item.idempotency_key[:8], result.detail)
        elif result.retry and now - item.created_at < self.backoff.give_up_after:
            when = now + timedelta(seconds=self.backoff.delay(item.attempts, self.rng))
            self.outbox.retry_at(item.id, when, result.detail)
            stats.retried += 1
            outcome = "retry"
            log.warning(
                "notification %s attempt %d failed, retrying at %s: %s",
                item.idempotency_key[:8],
                item.attempts,
                when.isoformat(),
                result.detail,
            )
        else:
            detail = result.detail if not result.retry else f"gave up after {item.attempts} attempts: {result.detail}"
            self.outbox.mark_failed(item.id, detail)
            stats.failed += 1
            outcome = "failed"
            log.error("notification %s failed for good: %s", item.idempotency_key[:8], detail)
        if self.observe is not None:
            self.observe(item.integration, outcome, elapsed)
