"""Per-key rate limiting: a token bucket per API key, in each worker process.

A key may make ``rate`` requests a second on average and ``burst`` at once. Buckets live in
memory (bounded, least recently used first out), so with N workers a key gets at most N times
the rate; that is the price of needing no shared store.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import NoReturn

from callhistory.kit.errors import ResourceExhausted

MAX_KEYS = 100_000


class RateLimiter:
    def __init__(self, *, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(max(burst, 1))
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def take(self, key_id: Hashable) -> None:
        """Spend one token of ``key_id``, or raise ``resource_exhausted`` with Retry-After."""
        if not self.enabled:
            return
        tokens, now = self._tokens(key_id)
        if tokens < 1:
            self._buckets[key_id] = (tokens, now)
            self._refuse(tokens)
        self._buckets[key_id] = (tokens - 1, now)
        if len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)

    def peek(self, key_id: Hashable) -> None:
        """Raise ``resource_exhausted`` if ``key_id`` has no token left, spending none."""
        if self.enabled and key_id in self._buckets:
            tokens, _ = self._tokens(key_id, keep=True)
            if tokens < 1:
                self._refuse(tokens)

    def _tokens(self, key_id: Hashable, *, keep: bool = False) -> tuple[float, float]:
        now = time.monotonic()
        if keep:
            tokens, last = self._buckets[key_id]
        else:
            tokens, last = self._buckets.pop(key_id, (self._burst, now))
        return min(self._burst, tokens + (now - last) * self._rate), now

    def _refuse(self, tokens: float) -> NoReturn:
        wait = math.ceil((1 - tokens) / self._rate)
        raise ResourceExhausted(
            f"rate limit of {self._rate:g} requests/s exceeded", retry_after=str(wait)
        )


class FailureThrottle:
    """Failed authentications per client address: ``per_minute`` of them at once, then one
    every ``60 / per_minute`` seconds. A throttled address is answered 429 before its
    credentials are looked up. In each worker's memory, like ``RateLimiter``."""

    def __init__(self, *, per_minute: int) -> None:
        self._failures = RateLimiter(rate=per_minute / 60, burst=per_minute)

    def check(self, address: str) -> None:
        """Raise ``resource_exhausted`` if ``address`` has no failure left to spend."""
        try:
            self._failures.peek(address)
        except ResourceExhausted as refused:
            raise ResourceExhausted(
                "too many failed authentications from this address",
                retry_after=refused.meta["retry_after"],
            ) from None

    def failed(self, address: str) -> None:
        with contextlib.suppress(ResourceExhausted):  # refused from the next attempt (check)
            self._failures.take(address)
