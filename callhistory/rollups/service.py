"""Statistics kept as calls are written, so that GetCallStats reads a few hundred sums
instead of every call of a year.

Each call adds to rows of sums in the tenant's time zone: its local day's, one per dimension
of that day (its extension, user, hotline, direction), and its local hour's. Whoever writes
call logs says what it wrote: ``apply`` takes the calls as they were before (an update, an
erasure) and as they are after, so the sums stay those of the stored calls under re-ingest,
late legs and erasure. Retention drops whole days and rebuilds the day it cuts through
(``trim``). Times to answer are kept as a histogram of whole seconds, so a p90 over any days
is exact (to the second).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db.engine import Database, lock_tenant_writes, transaction
from callhistory.kit.times import zone
from callhistory.rollups import repository
from callhistory.rollups.sums import DayKey, Sums, Target, call_sums

log = logging.getLogger("callhistory")
_QUARTER_US = 900_000_000  # every zone's offset is a whole number of quarter hours
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_targets = msgspec.json.Decoder(list[Target])


def sums_of(call: Mapping[str, Any]) -> Sums:
    """What one stored call (its columns) adds."""
    return call_sums(
        call_state=call["call_state"],
        direction=call["direction"],
        duration=int(call["duration"]),
        targets=_targets.decode(call["call_targets"]) if call["call_targets"] else [],
    )


@lru_cache(maxsize=64)
def clock(timezone: str) -> Callable[[int], tuple[int, int]]:
    """started_at (microseconds) -> (local day, local hour), both counted from 1970-01-01,
    cached per quarter hour of UTC."""
    local = zone(timezone)

    @lru_cache(maxsize=131_072)
    def quarter(index: int) -> tuple[int, int]:
        at = dt.datetime.fromtimestamp(index * _QUARTER_US / 1_000_000, tz=local)
        day = at.date().toordinal() - _EPOCH_ORDINAL
        return day, day * 24 + at.hour

    return lambda micros: quarter(micros // _QUARTER_US)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _day_keys(call: Mapping[str, Any], day: int) -> list[DayKey]:
    """The day rows a call adds to: the day's, and one per dimension."""
    return [
        (day, "", ""),
        (day, "extension", _text(call["extension_id"])),
        (day, "user", _text(call["user_id"])),
        (day, "hotline", _text(call["hotline_id"])),
        (day, "direction", call["direction"]),
    ]


class Delta:
    """Sums to add to (or take from) the tenant's rows."""

    def __init__(self, timezone: str) -> None:
        self._clock = clock(timezone)
        self.days: dict[DayKey, Sums] = {}
        self.hours: dict[int, Sums] = {}

    def add(self, calls: Iterable[Mapping[str, Any]], sign: int = 1) -> None:
        days, hours = self.days, self.hours
        for call in calls:
            day, hour = self._clock(int(call["started_at"]))
            sums = sums_of(call)
            for key in _day_keys(call, day):
                found = days.get(key)
                if found is None:
                    found = days[key] = Sums()
                found.add(sums, sign)
            found_hour = hours.get(hour)
            if found_hour is None:
                found_hour = hours[hour] = Sums()
            found_hour.add(sums, sign)


async def apply(
    conn: AsyncConnection,
    *,
    tenant_id: int,
    timezone: str,
    removed: Sequence[Mapping[str, Any]] = (),
    added: Sequence[Mapping[str, Any]] = (),
) -> None:
    """In the writer's transaction: the calls ``removed`` no longer count, those ``added`` do
    (an update is both: the call as it was, and as it is)."""
    if not removed and not added:
        return
    delta = Delta(timezone)
    delta.add(removed, -1)
    delta.add(added)
    await apply_delta(conn, tenant_id=tenant_id, delta=delta)


async def apply_delta(conn: AsyncConnection, *, tenant_id: int, delta: Delta) -> None:
    """``apply`` with its sums added up beforehand (an ingest batch does that before it takes
    the tenant's lock)."""
    if not delta.days and not delta.hours:
        return
    try:
        await repository.add_days(conn, tenant_id=tenant_id, delta=delta.days)
        await repository.add_hours(conn, tenant_id=tenant_id, delta=delta.hours)
    except repository.Inconsistent as error:
        # Derived data never stops a write: the calls are stored, GetCallStats counts calls
        # again, and the next `migrate` or `serve` builds the sums anew.
        log.warning("%s; statistics marked for a rebuild", error)
        await repository.set_state(conn, "pending")


async def rebuild(
    conn: AsyncConnection, *, tenant_id: int, timezone: str, days: tuple[int, int] | None = None
) -> None:
    """The tenant's sums made again from its stored calls: of the local days ``days``
    (first, last), or all of them."""
    start = end = None
    if days is not None:  # local days lie within a day either side of the same UTC days
        start, end = (days[0] - 1) * 86_400_000_000, (days[1] + 2) * 86_400_000_000
    await repository.clear(conn, tenant_id=tenant_id, days=days)
    delta = Delta(timezone)
    async for calls in repository.calls_of(conn, tenant_id=tenant_id, start=start, end=end):
        delta.add(calls)
    if days is not None:  # a call stored with a local day outside (the zone moved) stays out
        delta.days = {k: v for k, v in delta.days.items() if days[0] <= k[0] <= days[1]}
        delta.hours = {
            k: v for k, v in delta.hours.items() if days[0] * 24 <= k < (days[1] + 1) * 24
        }
    await repository.add_days(conn, tenant_id=tenant_id, delta=delta.days)
    await repository.add_hours(conn, tenant_id=tenant_id, delta=delta.hours)


async def trim(conn: AsyncConnection, *, cutoff: int) -> None:
    """After retention removed every call before ``cutoff``: each tenant's days before it go,
    and the day it cuts through is made again from the calls left."""
    for tenant_id, timezone in await repository.tenants(conn):
        await lock_tenant_writes(conn, tenant_id=tenant_id)
        day, _ = clock(timezone)(cutoff)
        await repository.drop_before(conn, tenant_id=tenant_id, day=day)
        await rebuild(conn, tenant_id=tenant_id, timezone=timezone, days=(day, day))


async def build_pending(db: Database) -> bool:
    """Sums of a store that held calls before they were kept (migration 0009), made once,
    tenant by tenant, each under its ingest lock; True if there was anything to do."""
    async with transaction(db, write=False) as conn:
        if await repository.state(conn) != "pending":
            return False
        tenants = await repository.tenants(conn)
    for tenant_id, timezone in tenants:
        async with transaction(db, write=True) as conn:
            await lock_tenant_writes(conn, tenant_id=tenant_id)
            await rebuild(conn, tenant_id=tenant_id, timezone=timezone)
    async with transaction(db, write=True) as conn:
        await repository.set_state(conn, "ready")
    return True


def _local_start(timezone: str, micros: int, unit: str) -> tuple[int, int] | None:
    """(local day, local hour) of ``micros`` if it is the start of a local ``unit`` (day or
    hour), else None."""
    at = dt.datetime.fromtimestamp(micros / 1_000_000, tz=zone(timezone))
    if micros % 1_000_000 or at.second or at.minute or (unit == "day" and at.hour):
        return None
    result: tuple[int, int] = clock(timezone)(micros)
    return result


def whole(
    timezone: str, start: int | None, end: int | None, unit: str
) -> tuple[bool, tuple[int, int] | None]:
    """Whether [start, end] is made of whole local days (``unit`` day) or hours (hour), and
    which (first, last; None when both ends are open)."""
    if start is None and end is None:
        return True, None
    if start is None or end is None:
        return False, None
    first = _local_start(timezone, start, unit)
    after = _local_start(timezone, end + 1, unit)
    if first is None or after is None:
        return False, None
    index = 0 if unit == "day" else 1
    return True, (first[index], after[index] - 1)


async def ready(conn: AsyncConnection) -> bool:
    """Whether the sums hold every stored call (not before the first build after 0009)."""
    return await repository.state(conn) == "ready"


async def day_sums(
    conn: AsyncConnection, *, tenant_id: int, days: tuple[int, int] | None, dim: str
) -> list[tuple[DayKey, Sums]]:
    """The tenant's sums by local day (``dim`` "") or by day and a dimension, of these days."""
    return await repository.days_of(conn, tenant_id=tenant_id, days=days, dim=dim)


async def hour_sums(
    conn: AsyncConnection, *, tenant_id: int, hours: tuple[int, int] | None
) -> list[tuple[int, Sums]]:
    """The tenant's sums by local hour, of these hours."""
    return await repository.hours_of(conn, tenant_id=tenant_id, hours=hours)
