"""Failed-token throttling: a client that sends too many bad or revoked tokens in a window gets
429 with Retry-After until its oldest failure in the window has aged out.

Kept per service worker in memory (a restart or another worker starts afresh): it slows token
guessing from one address, which 256-bit tokens already make hopeless, and keeps a scripted
flood of 401s from filling logs. A deployer behind a proxy should rate-limit there too (see
docs/service.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class FailedTokens:
    """Failures per client address within a sliding window."""

    def __init__(
        self, allowed: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.allowed = allowed
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.get(client)
        if times is None:
            return deque()
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._failures[client]
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds until `client` may try again, or None when it is not throttled."""
        with self._lock:
            now = self.clock()
            times = self._recent(client, now)
            if len(times) < self.allowed:
                return None
            return max(1, math.ceil(self.window - (now - times[-self.allowed])))

    def failed(self, client: str) -> bool:
        """Count one failed token from `client`; True when this failure locks the client out
        (once per lock-out, so that it is audited once, not once per refused request)."""
        with self._lock:
            now = self.clock()
            self._recent(client, now)
            times = self._failures.setdefault(client, deque())
            times.append(now)
            if len(self._failures) > 10_000:  # a flood of addresses: forget the oldest
                self._failures.pop(next(iter(self._failures)))
            return len(times) == self.allowed
