"""Failed sign-in attempts, counted per client address, so tokens cannot be guessed at speed.

Past MAX_FAILURES failures within WINDOW_SECONDS an address is answered 429 with `Retry-After`
until the oldest failure leaves the window, whatever it sends (a right token too: a guesser must
not learn that it guessed right). Each failure is logged with the address and the reason, never
with the token. The count lives in the process: with several replicas each counts its own.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

from monitor.core.errors import MlmonError

log = logging.getLogger("mlmon.auth")

MAX_FAILURES = 10
WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 10_000


class TooManyAttempts(MlmonError):
    """An address failed to authenticate too often (429)."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many failed sign-in attempts from this address; retry in {retry_after} s")


class FailedAttempts:
    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        """Raise TooManyAttempts while `address` is over the threshold."""
        now = self.clock()
        with self._lock:
            times = self._failures.get(address)
            if times is None:
                return
            self._expire(times, now)
            if len(times) >= self.max_failures:
                raise TooManyAttempts(max(1, math.ceil(times[0] + self.window - now)))
            if not times:
                del self._failures[address]

    def failed(self, address: str, reason: str) -> None:
        log.warning("failed authentication from %s: %s", address, reason[:200])
        now = self.clock()
        with self._lock:
            if address not in self._failures and len(self._failures) >= MAX_ADDRESSES:
                self._failures.clear()  # bounded memory; a flood of addresses forgets old counts
            times = self._failures.setdefault(address, deque())
            self._expire(times, now)
            times.append(now)
            while len(times) > self.max_failures:
                times.popleft()

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window:
            times.popleft()
