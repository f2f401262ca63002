"""Times: stored as integer microseconds since the Unix epoch (UTC), written as RFC 3339.

Integers keep the store portable (SQLite and PostgreSQL order them alike) and spare the hot path
from building ``datetime`` objects per row.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callhistory.kit.errors import InvalidArgument

_UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_EPOCH_DAY = _EPOCH.date()
_MICROSECOND = dt.timedelta(microseconds=1)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# How the API writes a whole-second time; a text of this shape that parsed is kept as it is.
_CANONICAL_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
# Earliest and latest instants we store: years 1970..9999.
MIN_MICROS = 0
MAX_MICROS = int((dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=_UTC) - _EPOCH).total_seconds()) * (
    1_000_000
)


def now_micros() -> int:
    return time.time_ns() // 1000


def to_micros(value: dt.datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND


@lru_cache(maxsize=1024)
def day_text(days: int) -> str:
    """Days since 1970-01-01 as YYYY-MM-DD."""
    return (_EPOCH_DAY + dt.timedelta(days=days)).isoformat()


@lru_cache(maxsize=8192)
def format_micros(value: int | None) -> str | None:
    """RFC 3339 UTC with ``Z``; fraction only when non-zero (milliseconds when exact).
    Cached: a batch's calls share their created and updated times, and often their legs'.
    The date comes from a cache of days and the time of day is computed: a page or an ingest
    batch formats thousands of times, and ``time.strftime`` is slower."""
    if value is None:
        return None
    seconds, frac = divmod(value, 1_000_000)
    days, second = divmod(seconds, 86_400)
    minutes, sec = divmod(second, 60)
    hour, minute = divmod(minutes, 60)
    text = f"{day_text(days)}T{hour:02d}:{minute:02d}:{sec:02d}"
    if frac == 0:
        return text + "Z"
    if frac % 1000 == 0:
        return f"{text}.{frac // 1000:03d}Z"
    return f"{text}.{frac:06d}Z"


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def valid_zone(name: str) -> bool:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def parse_request_time(text: str, field: str, tz: str, *, end_of_day: bool = False) -> int:
    """Parse a request time: RFC 3339 with offset, local time in ``tz``, or a bare date.

    A bare date is the start of that day in ``tz``, or its last microsecond when ``end_of_day``.
    """
    try:
        if len(text) == 10 and _DATE.fullmatch(text):
            day = dt.date.fromisoformat(text)
            start = dt.datetime(day.year, day.month, day.day, tzinfo=zone(tz))
            if not end_of_day:
                return _checked(to_micros(start), field)
            following = start + dt.timedelta(days=1)
            # Next local midnight, recomputed in the zone in case of a DST change that day.
            nxt = dt.datetime(following.year, following.month, following.day, tzinfo=zone(tz))
            return _checked(to_micros(nxt) - 1, field)
        if "T" not in text and "t" not in text:
            raise ValueError(text)
        value = dt.datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise InvalidArgument(
            field, "must be an RFC 3339 time such as 2021-03-10T17:07:19+07:00, or a date"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(tz))
    try:
        return _checked(to_micros(value), field)
    except OverflowError:
        raise InvalidArgument(field, "is out of range") from None


def optional_request_time(
    text: str | None, field: str, tz: str, *, end_of_day: bool = False
) -> int | None:
    """``parse_request_time`` for a time that may be absent (None or "")."""
    return parse_request_time(text, field, tz, end_of_day=end_of_day) if text else None


def request_time(text: str | None, field: str, tz: str) -> tuple[int | None, str | None]:
    """An optional request time, parsed, and as the API writes it (RFC 3339 UTC): the text
    itself when it is already written so, as PBXs mostly write it, which spares a format."""
    micros = optional_request_time(text, field, tz)
    if text is None or micros is None:
        return None, None
    if _CANONICAL_SHAPE.fullmatch(text):
        return micros, text
    return micros, format_micros(micros)


def _checked(micros: int, field: str) -> int:
    if not MIN_MICROS <= micros <= MAX_MICROS:
        raise InvalidArgument(field, "is out of range (1970..9999)")
    return micros


T = TypeVar("T")


def by_local_hour(zone: dt.tzinfo, render: Callable[[dt.datetime], T]) -> Callable[[str], T | None]:
    """For an RFC 3339 UTC time as stored documents write it: ``render`` of the local time
    at the start of its UTC hour, made once per hour and cached (an export or statistics
    convert millions of times); None where the zone's offset then is not a whole number of
    hours (the minutes move too: convert that time itself)."""

    @lru_cache(maxsize=65_536)
    def hour(head: str) -> T | None:
        at = dt.datetime.fromisoformat(head + ":00:00+00:00").astimezone(zone)
        offset = at.utcoffset()
        return render(at) if offset is not None and not offset.total_seconds() % 3600 else None

    return lambda text: hour(text[:13])
