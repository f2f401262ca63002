"""Call statistics: the tenant's calls of a filter, counted into buckets by one or two
dimensions. Calendar dimensions are in the tenant's time zone and complete (an hour or a day
without calls is a bucket of zeros: a chart needs it)."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec

from callhistory.calllogs.schemas import CallStatsBucket, GroupBy
from callhistory.kit.errors import InvalidArgument
from callhistory.kit.times import by_local_hour

MAX_BUCKETS = 1000
CALENDAR = ("day", "hour", "weekday")
_INBOUND = ("in", "ext_in")


class _Target(msgspec.Struct):
    ring_time: str | None = None
    answered_time: str | None = None
    status: str = ""


class StatsCall(msgspec.Struct):
    """The fields of a stored document the statistics read."""

    started_at: str
    direction: str
    call_state: str
    duration: int
    extension_id: str
    user_id: str
    hotline_id: str
    call_targets: list[_Target]


calls_decoder = msgspec.json.Decoder(list[StatsCall])


@dataclass
class _Tally:
    calls: int = 0
    answered: int = 0
    missed: int = 0
    abandoned: int = 0
    talk: int = 0
    waits: list[float] = field(default_factory=list)

    def bucket(self, key: dict[str, str]) -> CallStatsBucket:
        waits = sorted(self.waits)
        return CallStatsBucket(
            key=key,
            calls=self.calls,
            answered=self.answered,
            missed=self.missed,
            answer_rate=self.answered / self.calls if self.calls else 0.0,
            abandoned=self.abandoned,
            avg_time_to_answer=sum(waits) / len(waits) if waits else None,
            p90_time_to_answer=waits[math.ceil(0.9 * len(waits)) - 1] if waits else None,
            talk_time=self.talk,
            avg_talk_time=self.talk / self.answered if self.answered else 0.0,
        )


def _seconds(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def time_to_answer(call: StatsCall) -> float | None:
    """First ring to first answer, in seconds; None unless both are known."""
    rings = [t.ring_time for t in call.call_targets if t.ring_time]
    answers = [t.answered_time for t in call.call_targets if t.answered_time]
    if not rings or not answers:
        return None
    return max(0.0, _seconds(min(answers)) - _seconds(min(rings)))


class Counter:
    """Counts calls into buckets of ``group_by``."""

    def __init__(
        self, group_by: list[GroupBy], *, zone: dt.tzinfo, departments: dict[int, int]
    ) -> None:
        if len(set(group_by)) != len(group_by):
            raise InvalidArgument("group_by", "names a dimension twice")
        self._group_by = group_by
        self._departments = departments
        self._local = _local_clock(zone)
        self._tallies: dict[tuple[str, ...], _Tally] = {}

    def add(self, calls: Iterable[StatsCall]) -> None:
        for call in calls:
            key = tuple(self._value(name, call) for name in self._group_by)
            tally = self._tallies.get(key)
            if tally is None:
                tally = self._tallies[key] = _Tally()
                if len(self._tallies) > MAX_BUCKETS:
                    raise _too_many()
            answered = call.call_state == "answered"
            tally.calls += 1
            if answered:
                tally.answered += 1
                tally.talk += call.duration
                wait = time_to_answer(call)
                if wait is not None:
                    tally.waits.append(wait)
            elif call.direction in _INBOUND:
                tally.missed += 1
                if any(t.status == "cancelled" for t in call.call_targets):
                    tally.abandoned += 1

    def _value(self, name: GroupBy, call: StatsCall) -> str:
        if name in CALENDAR:
            day, hour, weekday = self._local(call.started_at)
            return day if name == "day" else hour if name == "hour" else weekday
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
            self._tallies.get(key, _Tally()).bucket(dict(zip(self._group_by, key, strict=True)))
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


def _local_clock(zone: dt.tzinfo) -> Callable[[str], tuple[str, str, str]]:
    """A stored UTC time as the tenant's local (day, hour, ISO weekday)."""

    def parts(at: dt.datetime) -> tuple[str, str, str]:
        return at.date().isoformat(), f"{at.hour:02d}", str(at.isoweekday())

    hour = by_local_hour(zone, parts)

    def local(text: str) -> tuple[str, str, str]:
        found = hour(text)
        return (
            found if found is not None else parts(dt.datetime.fromisoformat(text).astimezone(zone))
        )

    return local
