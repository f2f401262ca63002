"""All SQL on the webhook tables. Every function of a tenant's records takes the tenant;
the deliverer's (``due``, ``claim``, ``finish``, ``purge``) span tenants on purpose: one
worker serves every tenant's endpoints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db import bulk
from callhistory.db.backend import backend
from callhistory.db.engine import ALL_TENANTS, keyset_past
from callhistory.db.tables import (
    AnyRow,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
)
from callhistory.kit.paging import Key

endpoints, events, deliveries, attempts = (
    webhook_endpoints.c,
    webhook_events.c,
    webhook_deliveries.c,
    webhook_attempts.c,
)
_CHUNK = 500


async def count_endpoints(conn: AsyncConnection, *, tenant_id: int) -> int:
    select = sa.select(sa.func.count()).where(endpoints.tenant_id == tenant_id)
    return int((await conn.execute(select)).scalar_one())


async def insert_endpoint(conn: AsyncConnection, *, tenant_id: int, values: dict[str, Any]) -> None:
    await conn.execute(webhook_endpoints.insert().values(tenant_id=tenant_id, **values))


async def get_endpoint(conn: AsyncConnection, *, tenant_id: int, endpoint_id: int) -> AnyRow | None:
    select = sa.select(webhook_endpoints).where(
        endpoints.tenant_id == tenant_id, endpoints.id == endpoint_id
    )
    return (await conn.execute(select)).first()


async def list_endpoints(conn: AsyncConnection, *, tenant_id: int) -> list[AnyRow]:
    select = (
        sa.select(webhook_endpoints)
        .where(endpoints.tenant_id == tenant_id)
        .order_by(endpoints.created_at.desc(), endpoints.id.desc())
    )
    return list((await conn.execute(select)).all())


async def update_endpoint(
    conn: AsyncConnection, *, tenant_id: int, endpoint_id: int, values: dict[str, Any]
) -> AnyRow | None:
    result = await conn.execute(
        webhook_endpoints.update()
        .where(endpoints.tenant_id == tenant_id, endpoints.id == endpoint_id)
        .values(**values)
        .returning(*webhook_endpoints.c)
    )
    return result.first()


async def delete_endpoint(conn: AsyncConnection, *, tenant_id: int, endpoint_id: int) -> bool:
    """Remove the endpoint with its deliveries and their attempts."""
    await conn.execute(
        webhook_attempts.delete().where(
            attempts.tenant_id == tenant_id,
            attempts.delivery_id.in_(
                sa.select(deliveries.id).where(
                    deliveries.tenant_id == tenant_id, deliveries.endpoint_id == endpoint_id
                )
            ),
        )
    )
    await conn.execute(
        webhook_deliveries.delete().where(
            deliveries.tenant_id == tenant_id, deliveries.endpoint_id == endpoint_id
        )
    )
    result = await conn.execute(
        webhook_endpoints.delete().where(
            endpoints.tenant_id == tenant_id, endpoints.id == endpoint_id
        )
    )
    return bool(result.rowcount)


async def subscribed(conn: AsyncConnection, *, tenant_id: int) -> list[tuple[int, str]]:
    """The tenant's enabled endpoints: id and event types."""
    select = sa.select(endpoints.id, endpoints.events).where(
        endpoints.tenant_id == tenant_id, endpoints.enabled.is_(True)
    )
    return [(row.id, row.events) for row in await conn.execute(select)]


_EVENT_COLUMNS = ("tenant_id", "id", "type", "call_id", "seq", "occurred_at", "data")
# A new delivery: (tenant_id, id, endpoint_id, event_id, call_id, seq, now); the rest fixed.
_NEW_DELIVERY = (
    "tenant_id",
    "id",
    "endpoint_id",
    "event_id",
    "call_id",
    "seq",
    "state",
    "attempts",
    "next_at",
    "lease_until",
    "retry_from",
    "created_at",
    "finished_at",
    "last_code",
    "last_error",
)


async def add_events(
    conn: AsyncConnection,
    *,
    event_rows: Sequence[tuple[Any, ...]],
    delivery_rows: Sequence[tuple[Any, ...]],
) -> None:
    """Store events (values in ``_EVENT_COLUMNS``' order) and their first deliveries
    (tenant_id, id, endpoint_id, event_id, call_id, seq, now): pending, due now."""
    await bulk.insert_rows(conn, webhook_events, _EVENT_COLUMNS, event_rows)
    await bulk.insert_rows(
        conn,
        webhook_deliveries,
        _NEW_DELIVERY,
        [
            (*row[:6], "pending", 0, row[6], None, row[6], row[6], None, None, "")
            for row in delivery_rows
        ],
    )


async def forget_calls(
    conn: AsyncConnection, *, tenant_id: int, call_ids: Sequence[int], now: int
) -> None:
    """Remove the deliveries of these calls' events with their attempts, and the events
    (their payloads hold the numbers). One being sent at this moment stays, and so does its
    event until the history is swept: the call's deletion is then sent after it, in order."""
    for start in range(0, len(call_ids), _CHUNK):
        chunk = list(call_ids[start : start + _CHUNK])
        of_calls = sa.select(events.id).where(
            events.tenant_id == tenant_id, events.call_id.in_(chunk)
        )
        idle = sa.and_(
            deliveries.tenant_id == tenant_id,
            deliveries.event_id.in_(of_calls),
            sa.or_(deliveries.lease_until.is_(None), deliveries.lease_until <= now),
        )
        await conn.execute(
            webhook_attempts.delete().where(
                attempts.tenant_id == tenant_id,
                attempts.delivery_id.in_(sa.select(deliveries.id).where(idle)),
            )
        )
        await conn.execute(webhook_deliveries.delete().where(idle))
        await conn.execute(
            webhook_events.delete().where(
                events.tenant_id == tenant_id,
                events.call_id.in_(chunk),
                ~sa.exists().where(
                    deliveries.tenant_id == tenant_id, deliveries.event_id == events.id
                ),
            )
        )


class Filter(NamedTuple):
    """Which of a tenant's deliveries a listing shows: one endpoint's, optionally in one
    state or of one call."""

    tenant_id: int
    endpoint_id: int
    state: str
    call_id: int | None


def _deliveries_scan(
    where: Filter,
    *,
    key: Key | None,
    forward: bool,
    limit: int,
    inclusive: bool,
) -> sa.Select[Any]:
    """The endpoint's deliveries, newest first when walking forward."""
    tenant_id, endpoint_id, state, call_id = where
    select = (
        sa.select(*webhook_deliveries.c, events.type)
        .join(
            webhook_events,
            sa.and_(events.tenant_id == deliveries.tenant_id, events.id == deliveries.event_id),
        )
        .where(
            deliveries.tenant_id == tenant_id,
            events.tenant_id == tenant_id,
            deliveries.endpoint_id == endpoint_id,
        )
    )
    if state:
        select = select.where(deliveries.state == state)
    if call_id is not None:
        select = select.where(deliveries.call_id == call_id)
    columns = (deliveries.created_at, deliveries.id)
    if key is not None:
        select = select.where(keyset_past(columns, key, descending=forward, inclusive=inclusive))
    order = [c.desc() for c in columns] if forward else [c.asc() for c in columns]
    return select.order_by(*order).limit(limit)


async def deliveries_page(
    conn: AsyncConnection,
    where: Filter,
    *,
    key: Key | None,
    forward: bool,
    limit: int,
    inclusive: bool,
) -> list[AnyRow]:
    select = _deliveries_scan(
        where,
        key=key,
        forward=forward,
        limit=limit,
        inclusive=inclusive,
    )
    return list((await conn.execute(select)).all())


async def deliveries_beyond(
    conn: AsyncConnection,
    where: Filter,
    *,
    key: Key,
    forward: bool,
) -> bool:
    select = _deliveries_scan(
        where,
        key=key,
        forward=forward,
        limit=1,
        inclusive=False,
    )
    return (await conn.execute(select)).first() is not None


async def attempts_of(
    conn: AsyncConnection, *, tenant_id: int, delivery_ids: Sequence[int]
) -> dict[int, list[AnyRow]]:
    select = (
        sa.select(webhook_attempts)
        .where(attempts.tenant_id == tenant_id, attempts.delivery_id.in_(list(delivery_ids)))
        .order_by(attempts.delivery_id, attempts.attempt)
    )
    out: dict[int, list[AnyRow]] = {}
    for row in await conn.execute(select):
        out.setdefault(row.delivery_id, []).append(row)
    return out


async def retry(conn: AsyncConnection, *, tenant_id: int, delivery_id: int, now: int) -> bool:
    """Make a delivery due now, its retry window starting again: pending again if it had
    failed or succeeded."""
    result = await conn.execute(
        webhook_deliveries.update()
        .where(deliveries.tenant_id == tenant_id, deliveries.id == delivery_id)
        .values(
            state="pending",
            next_at=now,
            retry_from=now,
            finished_at=None,
            lease_until=sa.case(
                (deliveries.state == "pending", deliveries.lease_until), else_=None
            ),
        )
        .returning(deliveries.id)
    )
    return result.first() is not None


# --- the deliverer's statements: every tenant's deliveries --------------------------------

_DUE = sa.and_(
    deliveries.state == "pending",
    deliveries.next_at <= sa.bindparam("now"),
    sa.or_(deliveries.lease_until.is_(None), deliveries.lease_until <= sa.bindparam("now")),
)


async def due(conn: AsyncConnection, *, now: int) -> bool:
    """Whether any delivery is due (a cheap look before claiming in a write transaction)."""
    select = (
        sa.select(deliveries.tenant_id)
        .where(deliveries.state == "pending", deliveries.next_at <= sa.bindparam("now"))
        .limit(1)
    )
    result = await conn.execute(select, {"now": now}, execution_options=ALL_TENANTS)
    return result.first() is not None


class Claimed(NamedTuple):
    tenant_id: int
    id: int
    attempts: int
    retry_from: int
    endpoint_id: int
    failures: int  # the endpoint's deliveries failed in a row, when claimed
    url: str
    secret: str
    previous_secret: str | None
    previous_until: int | None
    event_id: int
    event_type: str
    occurred_at: int
    data: str


_MAX_ENDPOINTS = 50  # endpoints served by one claim

# Enabled endpoints with deliveries due (one index probe each, however long their backlogs),
# with how many of theirs are being sent (a small index: only leased rows); in random order,
# so that past _MAX_ENDPOINTS each gets its turn.
_SENDING = webhook_deliveries.alias("sending")
_WAITING = (
    sa.select(
        endpoints.tenant_id,
        endpoints.id,
        sa.select(sa.func.count())
        .where(
            _SENDING.c.tenant_id == endpoints.tenant_id,
            _SENDING.c.endpoint_id == endpoints.id,
            _SENDING.c.state == "pending",
            _SENDING.c.lease_until.is_not(None),
            _SENDING.c.lease_until > sa.bindparam("now"),
        )
        .scalar_subquery(),
    )
    .where(
        endpoints.enabled.is_(True),
        sa.exists().where(
            deliveries.tenant_id == endpoints.tenant_id,
            deliveries.endpoint_id == endpoints.id,
            deliveries.state == "pending",
            deliveries.next_at <= sa.bindparam("now"),
        ),
    )
    .order_by(sa.func.random())
    .limit(_MAX_ENDPOINTS)
)
_EARLIER = webhook_deliveries.alias("earlier")
# An endpoint's deliveries that may be sent now, the longest waiting first: due, not leased,
# and the earliest pending of their call at this endpoint (a call's events go in order).
_READY = (
    sa.select(deliveries.tenant_id, deliveries.id, deliveries.next_at)
    .join(
        webhook_endpoints,
        sa.and_(
            endpoints.tenant_id == deliveries.tenant_id, endpoints.id == deliveries.endpoint_id
        ),
    )
    .where(
        deliveries.tenant_id == sa.bindparam("tenant_id"),
        deliveries.endpoint_id == sa.bindparam("endpoint_id"),
        deliveries.state == "pending",
        deliveries.next_at <= sa.bindparam("now"),
        sa.or_(deliveries.lease_until.is_(None), deliveries.lease_until <= sa.bindparam("now")),
        endpoints.tenant_id == sa.bindparam("tenant_id"),
        endpoints.enabled.is_(True),
        ~sa.exists().where(
            _EARLIER.c.tenant_id == deliveries.tenant_id,
            _EARLIER.c.endpoint_id == deliveries.endpoint_id,
            _EARLIER.c.call_id == deliveries.call_id,
            _EARLIER.c.state == "pending",
            _EARLIER.c.seq < deliveries.seq,
        ),
    )
    .order_by(deliveries.next_at)
    .limit(sa.bindparam("free"))
)


async def claim(
    conn: AsyncConnection, *, now: int, lease_until: int, per_endpoint: int, limit: int
) -> list[Claimed]:
    """Lease up to ``limit`` deliveries to this worker until ``lease_until``, at most
    ``per_endpoint`` being sent to one endpoint at once (counting other workers'), with what
    sending them needs. On PostgreSQL rows another worker is claiming are skipped (SKIP
    LOCKED); SQLite's writers take turns, so what this one read is its own."""
    waiting = await conn.execute(_WAITING, {"now": now}, execution_options=ALL_TENANTS)
    found: list[Any] = []
    for tenant_id, endpoint_id, sending in waiting.all():
        where = {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "now": now}
        free = min(per_endpoint - sending, limit - len(found))
        if free > 0:
            found += (await conn.execute(_READY, {**where, "free": free})).all()
        if len(found) >= limit:
            break
    if not found:
        return []
    # Tenant by tenant: on Citus each statement then stays on the tenant's shard (a lock
    # spanning shards is refused).
    by_tenant: dict[int, list[int]] = {}
    for row in found:
        by_tenant.setdefault(int(row.tenant_id), []).append(int(row.id))
    by_next_at = {(int(row.tenant_id), int(row.id)): int(row.next_at) for row in found}
    claimed: list[Claimed] = []
    for tenant_id, ids in by_tenant.items():
        keys = {"tenant": tenant_id, "ids": ids}
        if not backend(conn).serial_writers:  # others may be claiming them at this moment
            locked = await conn.execute(_LOCK, {**keys, "now": now})
            keys["ids"] = [int(row.id) for row in locked]
            if not keys["ids"]:
                continue
        await conn.execute(_LEASE, {**keys, "lease_until": lease_until})
        claimed += [Claimed._make(row) for row in await conn.execute(_CLAIMED, keys)]
    claimed.sort(key=lambda row: by_next_at[(row.tenant_id, row.id)])
    return claimed


_KEYS = sa.and_(
    deliveries.tenant_id == sa.bindparam("tenant"),
    deliveries.id.in_(sa.bindparam("ids", expanding=True)),
)
# The candidates no other worker has leased or is leasing (SKIP LOCKED on PostgreSQL).
_LOCK = sa.select(deliveries.id).where(_KEYS, _DUE).with_for_update(skip_locked=True)
_LEASE = webhook_deliveries.update().where(_KEYS).values(lease_until=sa.bindparam("lease_until"))
_CLAIMED = (
    sa.select(
        deliveries.tenant_id,
        deliveries.id,
        deliveries.attempts,
        deliveries.retry_from,
        endpoints.id,
        endpoints.failures,
        endpoints.url,
        endpoints.secret,
        endpoints.previous_secret,
        endpoints.previous_until,
        events.id,
        events.type,
        events.occurred_at,
        events.data,
    )
    .join(
        webhook_endpoints,
        sa.and_(
            endpoints.tenant_id == deliveries.tenant_id, endpoints.id == deliveries.endpoint_id
        ),
    )
    .join(
        webhook_events,
        sa.and_(events.tenant_id == deliveries.tenant_id, events.id == deliveries.event_id),
    )
    .where(_KEYS, endpoints.tenant_id == sa.bindparam("tenant"))
)


async def release(conn: AsyncConnection, *, keys: Sequence[tuple[int, int]]) -> None:
    """Give back leased deliveries that were not attempted (a deliverer stopping)."""
    by_tenant: dict[int, list[int]] = {}
    for tenant_id, delivery_id in keys:
        by_tenant.setdefault(tenant_id, []).append(delivery_id)
    for tenant_id, ids in by_tenant.items():
        await conn.execute(
            webhook_deliveries.update().where(_KEYS).values(lease_until=None),
            {"tenant": tenant_id, "ids": ids},
        )


class Result(NamedTuple):
    """One attempt's outcome, as the deliverer decided it: ``state`` pending (retry at
    ``next_at``), succeeded or failed."""

    tenant_id: int
    delivery_id: int
    endpoint_id: int
    attempt: int
    at: int
    code: int | None
    latency_ms: int
    error: str
    state: str
    next_at: int
    failures_before: int  # the endpoint's count when claimed: 0 spares resetting it


_RECORD = (
    webhook_deliveries.update()
    .where(
        deliveries.tenant_id == sa.bindparam("t"),
        deliveries.id == sa.bindparam("d"),
    )
    .values(
        state=sa.bindparam("state"),
        attempts=sa.bindparam("attempt"),
        next_at=sa.bindparam("next_at"),
        lease_until=None,
        finished_at=sa.bindparam("finished_at"),
        last_code=sa.bindparam("code"),
        last_error=sa.bindparam("error"),
    )
)


async def finish(
    conn: AsyncConnection, *, results: Sequence[Result], now: int, disable_after: int
) -> list[tuple[int, int]]:
    """Record the attempts and their deliveries' new state; count endpoints' failures in a
    row and disable those that reach ``disable_after``. Answers the endpoints disabled. The
    attempts of a delivery removed meanwhile (its endpoint deleted, its call erased) are
    swept with the history (``purge``)."""
    kept = results
    await conn.execute(
        _RECORD,
        [
            {
                "t": r.tenant_id,
                "d": r.delivery_id,
                "state": r.state,
                "attempt": r.attempt,
                "next_at": r.next_at,
                "finished_at": None if r.state == "pending" else now,
                "code": r.code,
                "error": r.error[:500],
            }
            for r in kept
        ],
    )
    await conn.execute(
        webhook_attempts.insert(),
        [
            {
                "tenant_id": r.tenant_id,
                "delivery_id": r.delivery_id,
                "attempt": r.attempt,
                "at": r.at,
                "code": r.code,
                "latency_ms": r.latency_ms,
                "error": r.error[:500],
            }
            for r in kept
        ],
        execution_options=ALL_TENANTS,
    )
    # Failures in a row, per endpoint: after its last success in this batch, only those that
    # followed it; without one, added to the count it had.
    trail: dict[tuple[int, int], tuple[bool, int, str]] = {}
    for r in kept:
        endpoint = (r.tenant_id, r.endpoint_id)
        reset, count, last = trail.get(endpoint, (False, 0, ""))
        if r.state == "succeeded":
            if r.failures_before or count:
                trail[endpoint] = (True, 0, "")
        elif r.state == "failed":
            trail[endpoint] = (reset, count + 1, r.error)
    disabled: list[tuple[int, int]] = []
    for (tenant_id, endpoint_id), (reset, count, last) in trail.items():
        where = sa.and_(endpoints.tenant_id == tenant_id, endpoints.id == endpoint_id)
        failures = sa.literal(count) if reset else endpoints.failures + count
        row = (
            await conn.execute(
                webhook_endpoints.update()
                .where(where)
                .values(failures=failures)
                .returning(endpoints.failures, endpoints.enabled)
            )
        ).first()
        if count and row is not None and row.enabled and row.failures >= disable_after:
            reason = f"{row.failures} deliveries in a row failed; the last: {last}"
            await conn.execute(
                webhook_endpoints.update()
                .where(where)
                .values(enabled=False, disabled_reason=reason[:500], updated_at=now)
            )
            disabled.append((tenant_id, endpoint_id))
    return disabled


async def purge(conn: AsyncConnection, *, before: int) -> int:
    """Remove deliveries finished before ``before`` with their attempts, then the events no
    delivery needs any more; how many deliveries went."""
    old = sa.and_(deliveries.state != "pending", deliveries.finished_at < before)
    await conn.execute(
        webhook_attempts.delete().where(
            sa.tuple_(attempts.tenant_id, attempts.delivery_id).in_(
                sa.select(deliveries.tenant_id, deliveries.id).where(old)
            )
        ),
        execution_options=ALL_TENANTS,
    )
    gone = await conn.execute(webhook_deliveries.delete().where(old), execution_options=ALL_TENANTS)
    await conn.execute(
        webhook_attempts.delete().where(
            attempts.at < before,
            ~sa.exists().where(
                deliveries.tenant_id == attempts.tenant_id, deliveries.id == attempts.delivery_id
            ),
        ),
        execution_options=ALL_TENANTS,
    )
    await conn.execute(
        webhook_events.delete().where(
            events.occurred_at < before,
            ~sa.exists().where(
                deliveries.tenant_id == events.tenant_id, deliveries.event_id == events.id
            ),
        ),
        execution_options=ALL_TENANTS,
    )
    return int(gone.rowcount or 0)


async def sealed_secrets(conn: AsyncConnection) -> list[tuple[int, int, str, str | None]]:
    """(tenant, endpoint, secret, previous secret) of every endpoint, sealed (resealing)."""
    result = await conn.execute(
        sa.select(endpoints.tenant_id, endpoints.id, endpoints.secret, endpoints.previous_secret),
        execution_options=ALL_TENANTS,
    )
    return [(int(t), int(i), str(s), p) for t, i, s, p in result]
