"""Per-key rate limiting: a token bucket per API key, in each worker process.

A key may make ``rate`` requests a second on average and ``burst`` at once. Buckets live in
memory (bounded, least recently used first out), so with N workers a key gets at most N times
the rate; that is the price of needing no shared store.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from callhistory.errors import ResourceExhausted

MAX_KEYS = 100_000


class RateLimiter:
    def __init__(self, *, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(max(burst, 1))
        self._buckets: OrderedDict[int, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def take(self, key_id: int) -> None:
        """Spend one token of ``key_id``, or raise ``resource_exhausted`` with Retry-After."""
        if not self.enabled:
            return
        now = time.monotonic()
        tokens, last = self._buckets.pop(key_id, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < 1:
            self._buckets[key_id] = (tokens, now)
            wait = math.ceil((1 - tokens) / self._rate)
            raise ResourceExhausted(
                f"rate limit of {self._rate:g} requests/s exceeded", retry_after=str(wait)
            )
        self._buckets[key_id] = (tokens - 1, now)
        if len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)
