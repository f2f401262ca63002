"""The one ingest service every path goes through (API, FreeSWITCH, Asterisk, JSONL).

A batch is validated whole before anything is written: one bad item rejects the batch with the
item's field path. Calls are keyed by (tenant, source_id): a new source id inserts, a known one is
rewritten in place (same id and created_at) if and only if something changed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.calllogs.documents import call_log_json
from callhistory.calllogs.schemas import CallTarget
from callhistory.db import partitions
from callhistory.db.backend import backend
from callhistory.db.work import Work
from callhistory.directory import service as directory
from callhistory.ingest import asterisk_csv, repository
from callhistory.ingest.legs import Directory, Leg, assemble
from callhistory.ingest.schemas import IngestCallLog, IngestedCallLog
from callhistory.keys import service as keys
from callhistory.keys.schemas import PbxPrincipal
from callhistory.kit import ids
from callhistory.kit.errors import InvalidArgument, PermissionDenied, decode_error
from callhistory.kit.numbers import normalize
from callhistory.kit.times import (
    now_micros,
    optional_request_time,
    parse_request_time,
    request_time,
)
from callhistory.principal import Principal
from callhistory.recordings import service as recordings
from callhistory.rollups import service as rollups
from callhistory.webhooks import service as webhooks
from callhistory.webhooks.service import Change

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class Stored:
    """What storing one call did: ``created``, ``updated`` (something changed), ``unchanged``
    (the same call sent again) or ``erased`` (the tenant erased this call: not stored again)."""

    id: str
    source_id: str
    outcome: Literal["created", "updated", "unchanged", "erased"]

    def ack(self) -> IngestedCallLog:
        return IngestedCallLog(
            id=self.id, source_id=self.source_id, created=self.outcome == "created"
        )


_INBOUND = ("in", "ext_in")
_OUTBOUND = ("out", "ext", "ext_out")
_DAY = 86_400_000_000
EARLIEST_CALL = 946_684_800_000_000  # 2000-01-01T00:00:00Z: older "calls" are clock errors
# Validating and rendering a batch is milliseconds of Python: yielding to the event loop every
# so many calls lets other requests' database steps (page reads, another batch) go on between.
_YIELD_EVERY = 50
_REFERENCES: tuple[tuple[str, directory.Kind], ...] = (
    ("extension_id", "extensions"),
    ("user_id", "users"),
    ("hotline_id", "hotlines"),
)


def _targets(targets: list[CallTarget], tz: str) -> tuple[list[CallTarget], int | None]:
    """Targets in wire form (UTC times, derived status and ring time), and the first answer.

    Errors name fields relative to the target list; the caller adds the item's path (building
    path strings only when something is wrong keeps the happy path cheap)."""
    out: list[CallTarget] = []
    first_answer: int | None = None
    for i, target in enumerate(targets):
        try:
            _, add_text = request_time(target.add_time, "add_time", tz)
            ring, ring_text = request_time(target.ring_time, "ring_time", tz)
            answered, answered_text = request_time(target.answered_time, "answered_time", tz)
            ended, ended_text = request_time(target.ended_time, "ended_time", tz)
        except InvalidArgument as error:
            raise error.within(f"call_targets[{i}]") from None
        if answered is not None and (first_answer is None or answered < first_answer):
            first_answer = answered
        status = target.status or ("answered" if answered is not None else "no_answer")
        ring_duration = target.ring_duration
        if ring_duration is None:
            stop = answered if answered is not None else ended
            ring_duration = max(0, (stop - ring) // 1_000_000) if ring and stop else 0
        out.append(
            CallTarget(
                add_time=add_text,
                answered_time=answered_text,
                end_reason=target.end_reason,
                ended_time=ended_text,
                fail_code=target.fail_code,
                ring_duration=ring_duration,
                ring_time=ring_text,
                status=status,
                target_number=target.target_number,
                trunk_name=target.trunk_name,
            )
        )
    return out, first_answer


def _row(item: IngestCallLog, tz: str, newest: int) -> tuple[dict[str, Any], str]:
    """The stored columns of one item, with call_state, call_status and duration derived, and
    the number of the first target that answered ("" if none). Errors name fields relative to
    the item."""
    started = parse_request_time(item.started_at, "started_at", tz)
    if not EARLIEST_CALL <= started <= newest:
        raise InvalidArgument("started_at", "must be between 2000-01-01 and tomorrow")
    ended = optional_request_time(item.ended_at, "ended_at", tz)
    if ended is not None and ended < started:
        raise InvalidArgument("ended_at", "must not be before started_at")
    targets, first_answer = _targets(item.call_targets, tz)
    state = item.call_state
    if state == "unknown":
        if (
            first_answer is not None
            or any(t.status == "answered" for t in targets)
            or item.duration
        ):
            state = "answered"
        elif ended is not None:
            state = "not_answered"
    status = item.call_status
    if not status:
        finished = {"answered": "P", "not_answered": "N"}.get(state, "Z")
        status = "S" if ended is None else finished
    duration = item.duration
    if duration is None:
        answered_end = ended if state == "answered" else None
        duration = (
            (answered_end - first_answer) // 1_000_000 if answered_end and first_answer else 0
        )
    answered = next((t.target_number for t in targets if t.status == "answered"), "")
    return {
        "source_id": item.source_id,
        "caller": item.caller,
        "callee": item.callee,
        "caller_norm": normalize(item.caller),
        "callee_norm": normalize(item.callee),
        "direction": item.direction,
        "call_state": state,
        "call_status": status,
        "started_at": started,
        "ended_at": ended,
        "duration": max(0, duration),
        "extension_id": ids.parse_id(item.extension_id, "extension_id"),
        "user_id": ids.parse_id(item.user_id, "user_id"),
        "hotline_id": ids.parse_id(item.hotline_id, "hotline_id"),
        "contact_id": ids.parse_id(item.contact_id, "contact_id"),
        "external_id": item.external_id or None,
        "external_session_id": item.external_session_id or None,
        "recording_urls": _encoder.encode(item.recording_urls).decode(),
        "call_targets": _encoder.encode(targets).decode(),
        "note": item.note,
    }, answered


async def _check_references(
    conn: AsyncConnection, *, tenant_id: int, rows: list[dict[str, Any]], field: str
) -> None:
    for column, kind in _REFERENCES:
        wanted = {row[column] for row in rows if row[column] is not None}
        if not wanted:
            continue
        found = await directory.existing_ids(conn, kind=kind, tenant_id=tenant_id, ids=wanted)
        for i, row in enumerate(rows):
            if row[column] is not None and row[column] not in found:
                raise InvalidArgument(
                    f"{field}[{i}].{column}",
                    "no such record in this tenant",
                    source_id=row["source_id"],
                )


class Known(NamedTuple):
    """The tenant's extensions by number and hotline ids by normalised number."""

    extensions: dict[str, directory.ExtensionRef]
    hotlines: dict[str, int]


async def known_numbers(conn: AsyncConnection, *, tenant_id: int) -> Known:
    return Known(
        extensions=await directory.extensions_by_number(conn, tenant_id=tenant_id),
        hotlines=await directory.hotlines_by_number(conn, tenant_id=tenant_id),
    )


async def _attribute(
    conn: AsyncConnection,
    *,
    tenant_id: int,
    rows: list[dict[str, Any]],
    answered: list[str],
    known: Known | None,
) -> None:
    """Fill a missing extension, user and hotline from the numbers the PBX saw (``answered``:
    each row's first answering target)."""
    if all(row["extension_id"] and row["hotline_id"] and row["user_id"] for row in rows):
        return
    by_number, hotline_ids = known or await known_numbers(conn, tenant_id=tenant_id)
    for row, target in zip(rows, answered, strict=True):
        if row["extension_id"] is None:
            if row["direction"] in _INBOUND:
                ext = by_number.get(target) if target else None
            else:
                ext = by_number.get(row["caller"]) if row["direction"] in _OUTBOUND else None
            if ext is not None:
                row["extension_id"] = ext.id
                row["user_id"] = row["user_id"] or ext.user_id
                row["hotline_id"] = row["hotline_id"] or ext.hotline_id
        if row["hotline_id"] is None:
            number = row["callee_norm"] if row["direction"] in _INBOUND else row["caller_norm"]
            row["hotline_id"] = hotline_ids.get(number)


class Batch(NamedTuple):
    """A batch checked and rendered, ready to store: each item's source id in order, the
    latest row of each source id, the new calls' rows, and (when the store refuses duplicate
    source ids and none of these was stored when looked for) their INSERTs."""

    tenant_id: int
    source_ids: list[str]
    latest: dict[str, dict[str, Any]]
    new: dict[str, dict[str, Any]]
    now: int
    inserts: repository.Inserts | None
    timezone: str  # the tenant's, for its statistics' local days
    added: rollups.Delta  # what the new calls add to the statistics, if all are stored as new


async def ingest(
    work: Work, *, principal: Principal, items: list[IngestCallLog], field: str = "call_logs"
) -> list[Stored]:
    """Validate, attribute and render a batch on the unit of work's reads, then store it in
    its write transaction: on SQLite the write lock is held for the last steps alone, and
    another batch is prepared meanwhile."""
    return await store(
        work, await prepare(work.read, principal=principal, items=items, field=field)
    )


async def store(work: Work, batch: Batch) -> list[Stored]:
    """``ingest``'s second step: the prepared batch stored under the tenant's ingest lock."""
    conn = await work.write()
    await repository.lock_for_ingest(conn, tenant_id=batch.tenant_id)
    return await _store_batch(conn, batch)


async def prepare(
    read: AsyncConnection,
    *,
    principal: Principal,
    items: list[IngestCallLog],
    field: str = "call_logs",
    known: Known | None = None,
) -> Batch:
    """``ingest``'s first step: the batch validated, attributed and rendered, nothing written
    (one bad item raises, naming its field). Documents are rendered as for new calls; the few
    that turn out to be known are rendered again as updates (``_store``)."""
    tenant_id = principal.tenant_id
    rows, answered = [], []
    newest = now_micros() + _DAY
    for i, item in enumerate(items):
        if i % _YIELD_EVERY == _YIELD_EVERY - 1:
            await asyncio.sleep(0)  # let other requests' results in between (see _YIELD_EVERY)
        try:
            row, target = _row(item, principal.timezone, newest)
        except InvalidArgument as error:
            raise error.within(f"{field}[{i}]", source_id=item.source_id) from None
        rows.append(row)
        answered.append(target)
    await _check_references(read, tenant_id=tenant_id, rows=rows, field=field)
    await _attribute(read, tenant_id=tenant_id, rows=rows, answered=answered, known=known)
    latest = {row["source_id"]: row for row in rows}  # a source id twice in a batch: last wins
    now = now_micros()
    new = {
        source_id: {**row, "id": new_id, "created_at": now, "updated_at": now, "change_seq": 0}
        for (source_id, row), new_id in zip(latest.items(), ids.new_ids(len(latest)), strict=True)
    }
    for i, insert in enumerate(new.values()):
        if i % _YIELD_EVERY == _YIELD_EVERY - 1:
            await asyncio.sleep(0)
        insert["doc"] = call_log_json(insert)
    # Where the store refuses a duplicate source id, a batch none of whose calls is stored yet
    # is inserted as it is, its INSERTs built now and no second lookup under the lock: should
    # a concurrent batch store one of them meanwhile, the INSERT fails and ``_store`` takes over.
    inserts = None
    if backend(read).unique_source_ids and not await repository.find_by_source(
        read, tenant_id=tenant_id, source_ids=list(latest)
    ):
        inserts = repository.prepare_inserts(read, tenant_id=tenant_id, rows=list(new.values()))
    # Summed now, outside the lock (an import prepares its next batch while one is written);
    # used as it is when every call of the batch turns out new, as most do.
    added = rollups.Delta(principal.timezone)
    calls = list(new.values())
    for start in range(0, len(calls), _YIELD_EVERY):
        added.add(calls[start : start + _YIELD_EVERY])
        await asyncio.sleep(0)
    return Batch(
        tenant_id,
        [row["source_id"] for row in rows],
        latest,
        new,
        now,
        inserts,
        principal.timezone,
        added,
    )


async def _store_batch(
    conn: AsyncConnection, batch: Batch, *, erased: dict[str, int] | None = None
) -> list[Stored]:
    """Under the tenant's ingest lock: store the batch, each call written with a new change
    number, and say what became of each item. Calls the tenant erased (``erased``, looked up
    here unless the caller did under the same lock) are not stored again."""
    if erased is None:
        erased = await repository.erased_of(
            conn, tenant_id=batch.tenant_id, source_ids=list(batch.latest)
        )
    latest, new, inserts = batch.latest, batch.new, batch.inserts
    if erased:
        latest = {k: v for k, v in latest.items() if k not in erased}
        new = {k: v for k, v in new.items() if k not in erased}
        inserts = None
    await partitions.ensure_partitions(conn, started=[row["started_at"] for row in latest.values()])
    changed: set[str] = set()
    stored: dict[str, dict[str, Any]] = {}
    if inserts is not None:
        first = await repository.take_seqs(conn, tenant_id=batch.tenant_id, count=len(new))
        inserted = await _insert_all(conn, repository.numbered(inserts, first))
        if inserted:
            await rollups.apply_delta(conn, tenant_id=batch.tenant_id, delta=batch.added)
            await webhooks.record(
                conn,
                tenant_id=batch.tenant_id,
                changes=[
                    Change("call_log.created", row["id"], first + i, row["doc"])
                    for i, row in enumerate(new.values())
                ],
            )
    if inserts is None or not inserted:
        stored, changed = await _store(
            conn,
            tenant_id=batch.tenant_id,
            latest=latest,
            new=new,
            now=batch.now,
            timezone=batch.timezone,
            added=None if erased else batch.added,
        )

    def outcome(source_id: str) -> Stored:
        if source_id in erased:
            return Stored(id=str(erased[source_id]), source_id=source_id, outcome="erased")
        if source_id in stored:
            kind: Literal["updated", "unchanged"] = (
                "updated" if source_id in changed else "unchanged"
            )
            return Stored(id=str(stored[source_id]["id"]), source_id=source_id, outcome=kind)
        return Stored(id=str(new[source_id]["id"]), source_id=source_id, outcome="created")

    return [outcome(source_id) for source_id in batch.source_ids]


async def _insert_all(conn: AsyncConnection, inserts: repository.Inserts) -> bool:
    """Run the batch's INSERTs: all of them, or none and answer False (a concurrent batch
    stored one of these source ids after this one looked: a PBX retrying a slow post)."""
    try:
        async with conn.begin_nested():
            await repository.insert_prepared(conn, inserts)
    except IntegrityError:
        return False
    return True


async def _store(
    conn: AsyncConnection,
    *,
    tenant_id: int,
    latest: dict[str, dict[str, Any]],
    new: dict[str, dict[str, Any]],
    now: int,
    timezone: str,
    added: rollups.Delta | None,
) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Under the write lock: insert the calls not stored yet, rewrite those that changed, and
    answer the stored ones (by source id) and the source ids of those rewritten. ``added``:
    what ``new`` adds to the statistics, if already summed."""
    stored = await repository.find_by_source(conn, tenant_id=tenant_id, source_ids=list(latest))
    updates: list[dict[str, Any]] = []
    for source_id, old in stored.items():
        row = latest[source_id]
        if any(old[name] != value for name, value in row.items()):
            update = {**row, "id": old["id"], "created_at": old["created_at"], "updated_at": now}
            updates.append(
                update | {"doc": call_log_json(update), "previous_started_at": old["started_at"]}
            )
    inserts = [insert for source_id, insert in new.items() if source_id not in stored]
    if inserts or updates:
        seq = await repository.take_seqs(
            conn, tenant_id=tenant_id, count=len(inserts) + len(updates)
        )
        for row in (*inserts, *updates):
            row["change_seq"] = seq
            seq += 1
    await repository.insert_many(conn, tenant_id=tenant_id, rows=inserts)
    await repository.update_many(conn, tenant_id=tenant_id, rows=updates)
    if added is not None and not stored:
        await rollups.apply_delta(conn, tenant_id=tenant_id, delta=added)
    else:
        await rollups.apply(
            conn,
            tenant_id=tenant_id,
            timezone=timezone,
            removed=[stored[update["source_id"]] for update in updates],
            added=[*inserts, *updates],
        )
    await webhooks.record(
        conn,
        tenant_id=tenant_id,
        changes=[
            *(Change("call_log.created", r["id"], r["change_seq"], r["doc"]) for r in inserts),
            *(Change("call_log.updated", r["id"], r["change_seq"], r["doc"]) for r in updates),
        ],
    )
    return stored, {update["source_id"] for update in updates}


_leg_decoder = msgspec.json.Decoder(Leg)


async def ingest_legs(work: Work, *, principal: Principal, legs: list[Leg]) -> list[Stored]:
    """Store PBX legs, then rebuild the call log of every call they belong to. The tenant's
    ingest lock is taken first: an A-leg and its B-leg posted at the same moment must each
    see the other's leg when the call is rebuilt (PostgreSQL; SQLite writers are serial)."""
    conn = await work.write()
    await repository.lock_for_ingest(conn, tenant_id=principal.tenant_id)
    call_ids = list(dict.fromkeys(leg.call_id for leg in legs))
    erased = await repository.erased_of(conn, tenant_id=principal.tenant_id, source_ids=call_ids)
    # An erased call's legs hold its numbers too: neither they nor the call are stored again.
    legs = [leg for leg in legs if leg.call_id not in erased]
    call_ids = [call_id for call_id in call_ids if call_id not in erased]
    gone = [
        Stored(id=str(call_id), source_id=source_id, outcome="erased")
        for source_id, call_id in erased.items()
    ]
    if not call_ids:
        return gone
    unique = {(leg.call_id, leg.leg_id): leg for leg in legs}
    await repository.upsert_legs(
        conn,
        tenant_id=principal.tenant_id,
        legs=[
            {
                "call_source_id": leg.call_id,
                "leg_id": leg.leg_id,
                "started_at": leg.start,
                "data": _encoder.encode(leg).decode(),
            }
            for leg in unique.values()
        ],
    )
    stored = await repository.legs_of(conn, tenant_id=principal.tenant_id, call_ids=call_ids)
    known = await known_numbers(conn, tenant_id=principal.tenant_id)
    numbers = Directory(extensions=known.extensions, hotlines=known.hotlines)
    items = [
        _checked(
            i,
            assemble(
                call_id, _expand([_leg_decoder.decode(data) for data in stored[call_id]]), numbers
            ),
        )
        for i, call_id in enumerate(call_ids)
    ]
    batch = await prepare(conn, principal=principal, items=items, field="call_logs", known=known)
    return [*await _store_batch(conn, batch, erased={}), *gone]


def _expand(legs: list[Leg]) -> list[Leg]:
    """Asterisk rows read as a whole call; caller and target legs stored by earlier versions
    for a call that now has rows give way to them."""
    rows = [leg for leg in legs if leg.role == "row"]
    if not rows:
        return legs
    return asterisk_csv.resolve(rows) + [
        leg
        for leg in legs
        if leg.role != "row" and not leg.leg_id.startswith(("caller:", "target:"))
    ]


def _checked(index: int, item: IngestCallLog) -> IngestCallLog:
    """An assembled item held to the same limits as one posted to IngestCallLogs (a PBX may
    write a 100-digit caller; the store would refuse it with an error instead of a reason)."""
    try:
        return msgspec.convert(msgspec.to_builtins(item), IngestCallLog)
    except msgspec.ValidationError as exc:
        error = decode_error(exc)
        if not isinstance(error, InvalidArgument):
            raise error from None
        raise error.within(f"call_logs[{index}]", source_id=item.source_id) from None


async def pbx_principal(
    conn: AsyncConnection,
    *,
    caller: Principal | PbxPrincipal,
    domain: str,
    dialed: str,
    domain_field: str = "variables.domain_name",
) -> Principal:
    """The tenant a PBX's CDR belongs to.

    With a tenant's ingest key: that tenant, unless the CDR's SIP domain is another tenant's
    (refused). With a PBX's own credentials: the tenant whose domain the CDR names, else the one
    the operator routed the dialled number to (``callhistory pbx route``), else the PBX's only
    tenant; always one the PBX serves. Nothing a tenant can claim (its hotlines) routes a CDR."""
    named = await keys.tenant_of_domain(conn, domain=domain)
    if isinstance(caller, Principal):
        if named is not None and named != caller.tenant_id:
            raise PermissionDenied("this CDR's SIP domain belongs to another tenant")
        return caller
    how = f"domain {domain!r}"
    if named is None:
        named = await keys.tenant_of_route(conn, number=dialed)
        how = f"number {normalize(dialed)!r}"
    if named is None and len(caller.tenant_ids) == 1:
        (named,) = caller.tenant_ids
    if named is None:
        number = f"number {dialed!r}" if dialed else "no dialled number"
        if not domain:
            raise InvalidArgument(
                domain_field,
                f"the CDR names no domain the PBX set (domain_name, dialed_domain; sip_to_host "
                f"is the caller's and is not used), and {number} is not routed to a tenant",
            )
        raise InvalidArgument(
            domain_field, f"no tenant has domain {domain!r}, and {number} is not routed"
        )
    if named not in caller.tenant_ids:
        raise PermissionDenied(f"PBX {caller.name!r} does not serve the tenant of {how}")
    return await keys.tenant_principal(conn, tenant_id=named)


async def erase_call_logs(
    work: Work, *, principal: Principal, ids: list[int], number: str, dry_run: bool
) -> int:
    """Erase the tenant's calls with these ids, or every call with this number as caller or
    callee in any written form, and their PBX legs; how many. Each becomes a deletion in the
    change feed, and the same CDR delivered again is not stored again."""
    wanted = normalize(number) if number else ""
    if number and not any(ch.isdigit() for ch in wanted):
        raise InvalidArgument("number", "must be a phone number (it has no digits)")
    if dry_run:
        conn = work.read
    else:
        conn = await work.write()
        await repository.lock_for_ingest(conn, tenant_id=principal.tenant_id)
    calls = await repository.calls_to_erase(
        conn, tenant_id=principal.tenant_id, ids=ids, number=wanted
    )
    if dry_run or not calls:
        return len(calls)
    first = await repository.take_seqs(conn, tenant_id=principal.tenant_id, count=len(calls))
    await repository.erase(
        conn, tenant_id=principal.tenant_id, calls=calls, first_seq=first, now=now_micros()
    )
    await rollups.apply(
        conn, tenant_id=principal.tenant_id, timezone=principal.timezone, removed=calls
    )
    call_ids = [call["id"] for call in calls]
    await webhooks.forget_calls(conn, tenant_id=principal.tenant_id, call_ids=call_ids)
    await recordings.forget_calls(conn, tenant_id=principal.tenant_id, call_ids=call_ids)
    await webhooks.record(
        conn,
        tenant_id=principal.tenant_id,
        changes=[
            Change("call_log.deleted", call_id, first + i, _encoder.encode({"id": str(call_id)}))
            for i, call_id in enumerate(call_ids)
        ],
    )
    return len(calls)


async def recording_arrived(conn: AsyncConnection, *, principal: Principal, call_id: int) -> None:
    """A recording was uploaded for the call: it changes (a new ``updated_at`` and change
    number), so the change feed and webhooks tell those who sync that it is there."""
    tenant_id = principal.tenant_id
    await repository.lock_for_ingest(conn, tenant_id=tenant_id)
    source_id = await repository.source_of(conn, tenant_id=tenant_id, call_id=call_id)
    if source_id is None:
        return
    old = (await repository.find_by_source(conn, tenant_id=tenant_id, source_ids=[source_id]))[
        source_id
    ]
    seq = await repository.take_seqs(conn, tenant_id=tenant_id, count=1)
    row = {k: v for k, v in old.items() if k != "tenant_id"}
    row |= {"updated_at": now_micros(), "change_seq": seq}
    row["doc"] = call_log_json(row)
    await repository.update_many(
        conn, tenant_id=tenant_id, rows=[{**row, "previous_started_at": old["started_at"]}]
    )
    await webhooks.record(
        conn, tenant_id=tenant_id, changes=[Change("call_log.updated", call_id, seq, row["doc"])]
    )
