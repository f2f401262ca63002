"""Call statistics: the tenant's calls of a filter, counted into buckets by one or two
dimensions. Calendar dimensions are in the tenant's time zone and complete (an hour or a day
without calls is a bucket of zeros: a chart needs it)."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterable

import msgspec

from callhistory.calllogs.schemas import CallStatsBucket, GroupBy
from callhistory.kit.errors import InvalidArgument
from callhistory.kit.times import day_text, to_micros
from callhistory.rollups.service import clock
from callhistory.rollups.sums import DayKey, Sums, Target, call_sums

MAX_BUCKETS = 1000
CALENDAR = ("day", "hour", "weekday")


class StatsCall(msgspec.Struct):
    """The fields of a stored document the statistics read."""

    started_at: str
    direction: str
    call_state: str
    duration: int
    extension_id: str
    user_id: str
    hotline_id: str
    call_targets: list[Target]


calls_decoder = msgspec.json.Decoder(list[StatsCall])


def _bucket(sums: Sums, key: dict[str, str]) -> CallStatsBucket:
    p90 = sums.p90()
    return CallStatsBucket(
        key=key,
        calls=sums.calls,
        answered=sums.answered,
        missed=sums.missed,
        answer_rate=sums.answered / sums.calls if sums.calls else 0.0,
        abandoned=sums.abandoned,
        avg_time_to_answer=sums.wait_us / sums.waits / 1_000_000 if sums.waits else None,
        p90_time_to_answer=float(p90) if p90 is not None else None,
        talk_time=sums.talk,
        avg_talk_time=sums.talk / sums.answered if sums.answered else 0.0,
    )


class Counter:
    """Counts calls into buckets of ``group_by``."""

    def __init__(
        self, group_by: list[GroupBy], *, timezone: str, departments: dict[int, int]
    ) -> None:
        if len(set(group_by)) != len(group_by):
            raise InvalidArgument("group_by", "names a dimension twice")
        self._group_by = group_by
        self._departments = departments
        self._clock = clock(timezone)
        self._tallies: dict[tuple[str, ...], Sums] = {}

    def _tally(self, key: tuple[str, ...]) -> Sums:
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = Sums()
            if len(self._tallies) > MAX_BUCKETS:
                raise _too_many()
        return tally

    def add(self, calls: Iterable[StatsCall]) -> None:
        """Count stored calls (their documents' fields)."""
        for call in calls:
            tally = self._tally(tuple(self._value(name, call) for name in self._group_by))
            tally.add(
                call_sums(
                    call_state=call.call_state,
                    direction=call.direction,
                    duration=call.duration,
                    targets=call.call_targets,
                )
            )

    def add_days(self, rows: Iterable[tuple[DayKey, Sums]]) -> None:
        """Count the statistics kept by local day, alone or by one dimension (the rows of one
        ``dim``; ``user`` rows count for departments too)."""
        for (day, dim, value), sums in rows:
            values = {"day": day_text(day), dim: value}
            if "department" in self._group_by:
                department = self._departments.get(int(value)) if value else None
                values["department"] = "" if department is None else str(department)
            self._tally(tuple(values[name] for name in self._group_by)).add(sums)

    def add_hours(self, rows: Iterable[tuple[int, Sums]]) -> None:
        """Count the statistics kept by local hour."""
        for hour, sums in rows:
            values = _calendar(hour)
            self._tally(tuple(values[name] for name in self._group_by)).add(sums)

    def _value(self, name: GroupBy, call: StatsCall) -> str:
        if name in CALENDAR:
            _, hour = self._clock(to_micros(dt.datetime.fromisoformat(call.started_at)))
            return _calendar(hour)[name]
        if name == "extension":
            return call.extension_id
        if name == "user":
            return call.user_id
        if name == "hotline":
            return call.hotline_id
        if name == "department":
            department = self._departments.get(int(call.user_id)) if call.user_id else None
            return "" if department is None else str(department)
        return call.direction

    def buckets(self, days: tuple[dt.date, dt.date] | None) -> list[CallStatsBucket]:
        """Every bucket, in order; calendar dimensions complete over ``days`` (the filter's
        dates; else the first and last day with calls)."""
        axes = [self._axis(i, name, days) for i, name in enumerate(self._group_by)]
        if math.prod(len(axis) for axis in axes) > MAX_BUCKETS:
            raise _too_many()
        return [
            _bucket(self._tallies.get(key, Sums()), dict(zip(self._group_by, key, strict=True)))
            for key in itertools.product(*axes)
        ]

    def _axis(self, index: int, name: GroupBy, days: tuple[dt.date, dt.date] | None) -> list[str]:
        seen = sorted({key[index] for key in self._tallies})
        if name == "hour":
            return [f"{h:02d}" for h in range(24)]
        if name == "weekday":
            return [str(d) for d in range(1, 8)]
        if name == "day":
            if days is None:
                if not seen:
                    return []
                days = (dt.date.fromisoformat(seen[0]), dt.date.fromisoformat(seen[-1]))
            count = (days[1] - days[0]).days + 1
            if count > MAX_BUCKETS:
                raise _too_many()
            return [(days[0] + dt.timedelta(days=i)).isoformat() for i in range(count)]
        return seen


def _too_many() -> InvalidArgument:
    return InvalidArgument(
        "group_by", f"more than {MAX_BUCKETS} buckets: narrow the dates or group less finely"
    )


def _calendar(hour: int) -> dict[str, str]:
    """A local hour counted from 1970-01-01 00:00 as its day, hour of day and ISO weekday."""
    day = hour // 24
    return {
        "day": day_text(day),
        "hour": f"{hour % 24:02d}",
        "weekday": str((day + 3) % 7 + 1),  # 1970-01-01 was a Thursday
    }
