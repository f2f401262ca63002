"""The sums a bucket of calls adds up to, as the statistics keep them."""

from __future__ import annotations

import math
from collections import Counter as Histogram
from dataclasses import dataclass, field

DayKey = tuple[int, int, int, int, str]  # local day, extension, user, hotline, direction


@dataclass
class Sums:
    """What a bucket of calls adds up to; ``hist`` counts the answered calls by whole seconds
    from first ring to first answer, ``wait_us`` sums those waits exactly."""

    calls: int = 0
    answered: int = 0
    missed: int = 0
    abandoned: int = 0
    talk: int = 0
    waits: int = 0
    wait_us: int = 0
    hist: Histogram[int] = field(default_factory=Histogram)

    def add(self, other: Sums, sign: int = 1) -> None:
        self.calls += sign * other.calls
        self.answered += sign * other.answered
        self.missed += sign * other.missed
        self.abandoned += sign * other.abandoned
        self.talk += sign * other.talk
        self.waits += sign * other.waits
        self.wait_us += sign * other.wait_us
        for seconds, count in other.hist.items():
            self.hist[seconds] += sign * count
            if not self.hist[seconds]:
                del self.hist[seconds]

    def p90(self) -> int | None:
        """The nearest-rank 90th percentile of the waits, in whole seconds."""
        if not self.waits:
            return None
        rank = math.ceil(0.9 * self.waits)
        for seconds in sorted(self.hist):
            rank -= self.hist[seconds]
            if rank <= 0:
                return seconds
        raise AssertionError("the histogram holds fewer waits than counted")
