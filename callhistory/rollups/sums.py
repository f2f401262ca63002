"""The sums a bucket of calls adds up to, as the statistics keep them."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter as Histogram
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from callhistory.kit.times import to_micros

DayKey = tuple[int, str, str]  # local day, dimension ("" for all calls), its value
INBOUND = ("in", "ext_in")
# The stored columns a call's sums are made of (``apply`` takes calls as mappings of these).
CALL_FIELDS = (
    "started_at",
    "id",
    "direction",
    "call_state",
    "duration",
    "extension_id",
    "user_id",
    "hotline_id",
    "call_targets",
)


class Target(msgspec.Struct):
    """What the statistics read of a call's target."""

    ring_time: str | None = None
    answered_time: str | None = None
    status: str = ""


def _micros(text: str) -> int:
    return to_micros(dt.datetime.fromisoformat(text))


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
        if other.hist:  # (a delta's waits may sum to 0 while its histogram does not)
            hist = self.hist
            for seconds, count in other.hist.items():
                left = hist.get(seconds, 0) + sign * count
                if left:
                    hist[seconds] = left
                else:
                    del hist[seconds]

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


def call_sums(*, call_state: str, direction: str, duration: int, targets: Sequence[Target]) -> Sums:
    """What one call adds: answered (its talk time, and its wait from the first ring to the
    first answer when both are known), or missed when inbound (abandoned when the caller hung
    up while a phone rang)."""
    sums = Sums(calls=1)
    if call_state == "answered":
        sums.answered = 1
        sums.talk = duration
        rings = [t.ring_time for t in targets if t.ring_time]
        answers = [t.answered_time for t in targets if t.answered_time]
        if rings and answers:
            wait = max(0, _micros(min(answers)) - _micros(min(rings)))
            sums.waits, sums.wait_us = 1, wait
            sums.hist[wait // 1_000_000] = 1
    elif direction in INBOUND:
        sums.missed = 1
        sums.abandoned = int(any(t.status == "cancelled" for t in targets))
    return sums
