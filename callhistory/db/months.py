"""Calendar months in UTC microseconds: PostgreSQL's partitions of call logs (``db.partitions``),
and the windows a walk along started_at reads them in (``calllogs.repository.walk_windows``)."""

from __future__ import annotations

import calendar
import itertools
import time
from typing import TypeAlias

# Bounds of started_at: (from, before), either open (None).
Window: TypeAlias = tuple[int | None, int | None]

# The months of each window a walk reads after the first month, before reading all the rest at
# once: a page seldom reaches further than the first, and a filter few calls match still reads
# a few partitions per statement, not a statement a month.
WINDOW_MONTHS = (1, 2, 4, 8)


def month_of(micros: int) -> tuple[int, int]:
    moment = time.gmtime(micros // 1_000_000)
    return moment.tm_year, moment.tm_mon


def month_start(year: int, month: int) -> int:
    return calendar.timegm((year, month, 1, 0, 0, 0)) * 1_000_000


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def month_windows(anchor: int, far: int | None, *, step: int) -> list[Window]:
    """Windows of started_at in walk order (``step`` -1: newest first, 1: oldest first): the
    month of ``anchor`` (and anything beyond it the other way), windows of ``WINDOW_MONTHS``
    after it, then all the rest. One window when ``far``, the furthest start wanted, is within
    the first month; none beyond ``far``."""
    year, month = month_of(anchor)
    months = year * 12 + month - 1  # the anchor's month, counted from year 0
    # Month boundaries in walk order: the anchor month's far edge, then one per window.
    edges, index = [], months if step < 0 else months + 1
    for size in (0, *WINDOW_MONTHS):
        index += step * size
        edges.append(month_start(index // 12, index % 12 + 1))
    if far is not None and (far >= edges[0] if step < 0 else far < edges[0]):
        return [(None, None)]
    bounds: list[int | None] = [None, *edges, None]
    windows: list[Window] = [
        (second, first) if step < 0 else (first, second)
        for first, second in itertools.pairwise(bounds)
    ]
    return [w for w in windows if far is None or _reaches(w, far, step)]


def _reaches(window: Window, far: int, step: int) -> bool:
    low, high = window
    return (high is None or high > far) if step < 0 else (low is None or low <= far)
