"""Webhook endpoints of a tenant, the outbox of call events, and the deliveries' history.

Events are written by ``record`` in the transaction of the change that caused them (an
outbox): a call acknowledged to its PBX has its events stored, and the deliverer
(``webhooks.delivery``) sends them from there, whatever happens to the process meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.kit import ids
from callhistory.kit.errors import InvalidArgument, NotFound, ResourceExhausted
from callhistory.kit.paging import CursorCodec, Key, paginate, parse_paging
from callhistory.kit.sealing import Sealer
from callhistory.kit.times import format_micros, now_micros
from callhistory.principal import Principal
from callhistory.webhooks import repository, signing
from callhistory.webhooks.guard import AllowList, check_url
from callhistory.webhooks.schemas import (
    EVENT_TYPES,
    AttemptRead,
    DeliveriesRequest,
    DeliveryList,
    DeliveryRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
    EndpointUpdate,
    EventType,
    SecretRotated,
)

MAX_ENDPOINTS = 20
ROTATION_OVERLAP = 24 * 3600 * 1_000_000  # a rotated secret's predecessor signs for a day more


def secret_context(tenant_id: int, endpoint_id: int) -> str:
    return f"webhook:{tenant_id}:{endpoint_id}"


def _events(wanted: Sequence[EventType]) -> str:
    return ",".join(t for t in EVENT_TYPES if not wanted or t in wanted)


def endpoint_read(row: Any) -> EndpointRead:
    return EndpointRead(
        id=str(row.id),
        url=row.url,
        events=[t for t in EVENT_TYPES if t in row.events.split(",")],
        description=row.description,
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        failures=row.failures,
        created_at=format_micros(row.created_at),
        updated_at=format_micros(row.updated_at),
    )


def _endpoint_id(value: str | int, field: str = "id") -> int:
    parsed = ids.parse_id(value, field)
    if parsed is None:
        raise InvalidArgument(field, "is required")
    return parsed


async def _existing(
    conn: AsyncConnection, *, principal: Principal, endpoint_id: int, field: str = "id"
) -> Any:
    row = await repository.get_endpoint(
        conn, tenant_id=principal.tenant_id, endpoint_id=endpoint_id
    )
    if row is None:
        raise NotFound(f"{field}: no such webhook endpoint in this tenant", field=field)
    return row


async def create_endpoint(
    conn: AsyncConnection,
    *,
    principal: Principal,
    request: EndpointCreate,
    sealer: Sealer,
    allow: AllowList,
) -> EndpointCreated:
    url = check_url(request.url, allow)
    tenant_id = principal.tenant_id
    if await repository.count_endpoints(conn, tenant_id=tenant_id) >= MAX_ENDPOINTS:
        raise ResourceExhausted(f"a tenant has at most {MAX_ENDPOINTS} webhook endpoints")
    endpoint_id, now, secret = ids.new_id(), now_micros(), signing.new_secret()
    await repository.insert_endpoint(
        conn,
        tenant_id=tenant_id,
        values={
            "id": endpoint_id,
            "url": url,
            "events": _events(request.events),
            "description": request.description,
            "enabled": True,
            "disabled_reason": "",
            "failures": 0,
            "secret": sealer.seal(secret, context=secret_context(tenant_id, endpoint_id)),
            "created_at": now,
            "updated_at": now,
        },
    )
    row = await _existing(conn, principal=principal, endpoint_id=endpoint_id)
    return EndpointCreated(endpoint=endpoint_read(row), secret=secret)


async def list_endpoints(conn: AsyncConnection, *, principal: Principal) -> list[EndpointRead]:
    rows = await repository.list_endpoints(conn, tenant_id=principal.tenant_id)
    return [endpoint_read(row) for row in rows]


async def update_endpoint(
    conn: AsyncConnection, *, principal: Principal, request: EndpointUpdate, allow: AllowList
) -> EndpointRead:
    endpoint_id = _endpoint_id(request.id)
    row = await _existing(conn, principal=principal, endpoint_id=endpoint_id)
    values: dict[str, Any] = {"updated_at": now_micros()}
    if request.url is not None:
        values["url"] = check_url(request.url, allow)
    if request.events is not None:
        values["events"] = _events(request.events)
    if request.description is not None:
        values["description"] = request.description
    if request.enabled is not None and request.enabled != row.enabled:
        # Enabled again: failures start from nothing, and what was pending is sent.
        values |= {"enabled": request.enabled, "disabled_reason": "", "failures": 0}
    updated = await repository.update_endpoint(
        conn, tenant_id=principal.tenant_id, endpoint_id=endpoint_id, values=values
    )
    return endpoint_read(updated)


async def delete_endpoint(
    conn: AsyncConnection, *, principal: Principal, endpoint_id: str | int
) -> bool:
    parsed = _endpoint_id(endpoint_id)
    if not await repository.delete_endpoint(
        conn, tenant_id=principal.tenant_id, endpoint_id=parsed
    ):
        raise NotFound("no such webhook endpoint in this tenant", field="id")
    return True


async def rotate_secret(
    conn: AsyncConnection, *, principal: Principal, endpoint_id: str | int, sealer: Sealer
) -> SecretRotated:
    """A new signing secret; the current one goes on signing beside it for a day, so
    receivers can switch over without missing a message."""
    parsed = _endpoint_id(endpoint_id)
    row = await _existing(conn, principal=principal, endpoint_id=parsed)
    now, secret = now_micros(), signing.new_secret()
    context = secret_context(principal.tenant_id, parsed)
    until = now + ROTATION_OVERLAP
    await repository.update_endpoint(
        conn,
        tenant_id=principal.tenant_id,
        endpoint_id=parsed,
        values={
            "secret": sealer.seal(secret, context=context),
            "previous_secret": row.secret,
            "previous_until": until,
            "updated_at": now,
        },
    )
    return SecretRotated(id=str(parsed), secret=secret, previous_valid_until=format_micros(until))


async def list_deliveries(
    conn: AsyncConnection, *, principal: Principal, request: DeliveriesRequest, secret: bytes
) -> DeliveryList:
    endpoint_id = _endpoint_id(request.endpoint_id, "endpoint_id")
    await _existing(conn, principal=principal, endpoint_id=endpoint_id, field="endpoint_id")
    call_id = ids.parse_id(request.call_id, "call_id")
    page = parse_paging(request.paging, default_sort="-created_at", allowed_sorts=("-created_at",))
    tenant_id = principal.tenant_id
    codec = CursorCodec(
        secret=secret,
        tenant_id=tenant_id,
        sort=page.sort,
        filter_key=f"webhook_deliveries:{endpoint_id}:{request.state}:{call_id}".encode(),
    )
    where = repository.Filter(tenant_id, endpoint_id, request.state, call_id)

    async def fetch(key: Key | None, forward: bool, limit: int, inclusive: bool) -> list[Any]:
        return await repository.deliveries_page(
            conn, where, key=key, forward=forward, limit=limit, inclusive=inclusive
        )

    async def exists(key: Key, forward: bool) -> bool:
        return await repository.deliveries_beyond(conn, where, key=key, forward=forward)

    result = await paginate(
        request=page,
        codec=codec,
        fetch=fetch,
        exists=exists,
        key_of=lambda row: (row.created_at, row.id),
    )
    tried = await repository.attempts_of(
        conn, tenant_id=tenant_id, delivery_ids=[row.id for row in result.rows]
    )
    return DeliveryList(
        deliveries=[_delivery_read(row, tried.get(row.id, [])) for row in result.rows],
        paging=result.paging,
    )


def _delivery_read(row: Any, tried: list[Any]) -> DeliveryRead:
    return DeliveryRead(
        id=str(row.id),
        endpoint_id=str(row.endpoint_id),
        event_id=str(row.event_id),
        event_type=row.type,
        call_id=str(row.call_id),
        state=row.state,
        next_attempt_at=format_micros(row.next_at) if row.state == "pending" else None,
        created_at=format_micros(row.created_at),
        finished_at=format_micros(row.finished_at),
        attempts=[
            AttemptRead(
                attempt=a.attempt,
                at=format_micros(a.at),
                succeeded=a.code is not None and 200 <= a.code < 300,
                response_code=a.code,
                latency_ms=a.latency_ms,
                error=a.error,
            )
            for a in tried
        ],
    )


async def retry_delivery(
    conn: AsyncConnection, *, principal: Principal, delivery_id: str | int
) -> None:
    """Send a delivery again now, with a new retry window."""
    parsed = _endpoint_id(delivery_id)
    if not await repository.retry(
        conn, tenant_id=principal.tenant_id, delivery_id=parsed, now=now_micros()
    ):
        raise NotFound("no such webhook delivery in this tenant", field="id")


class Change(NamedTuple):
    """A call log written or erased: what the outbox records of it."""

    type: EventType
    call_id: int
    seq: int  # the call's change number: its events are sent in this order
    data: bytes  # the call log's JSON, or {"id": ...} for a deletion


async def record(conn: AsyncConnection, *, tenant_id: int, changes: Sequence[Change]) -> None:
    """Store these changes' events and a delivery for each endpoint that wants them, in the
    caller's transaction. Nothing is stored for a tenant without enabled endpoints."""
    if not changes:
        return
    wanted = await repository.subscribed(conn, tenant_id=tenant_id)
    if not wanted:
        return
    now = now_micros()
    event_rows: list[tuple[Any, ...]] = []
    delivery_rows: list[tuple[Any, ...]] = []
    event_ids = ids.new_ids(len(changes))
    delivery_ids = iter(ids.new_ids(len(changes) * len(wanted)))
    for change, event_id in zip(changes, event_ids, strict=True):
        event_rows.append(
            (
                tenant_id,
                event_id,
                change.type,
                change.call_id,
                change.seq,
                now,
                change.data.decode(),
            )
        )
        for endpoint_id, types in wanted:
            if change.type in types:
                delivery_rows.append(
                    (
                        tenant_id,
                        next(delivery_ids),
                        endpoint_id,
                        event_id,
                        change.call_id,
                        change.seq,
                        now,
                    )
                )
    await repository.add_events(conn, event_rows=event_rows, delivery_rows=delivery_rows)


async def forget_calls(conn: AsyncConnection, *, tenant_id: int, call_ids: Sequence[int]) -> None:
    """Erased calls: their earlier events (which hold their numbers) go, delivered or not."""
    await repository.forget_calls(conn, tenant_id=tenant_id, call_ids=call_ids, now=now_micros())


async def reseal_secrets(conn: AsyncConnection, *, sealer: Sealer) -> int:
    """Seal every endpoint's signing secrets not sealed with the current key (after
    ``CALLHISTORY_DATA_KEY`` was rotated); how many endpoints changed. Run at start-up."""
    count = 0
    for tenant_id, endpoint_id, secret, previous in await repository.sealed_secrets(conn):
        context = secret_context(tenant_id, endpoint_id)
        values: dict[str, Any] = {}
        for name, stored in (("secret", secret), ("previous_secret", previous)):
            if stored is None or sealer.current(stored):
                continue
            plain = sealer.open(stored, context=context)
            if plain:  # else sealed with a key no longer configured: left for its return
                values[name] = sealer.seal(plain, context=context)
        if values:
            await repository.update_endpoint(
                conn, tenant_id=tenant_id, endpoint_id=endpoint_id, values=values
            )
            count += 1
    return count
