"""IngestCallLogs: idempotent on source_id, atomic per batch, derived fields."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec

from callhistory.db.engine import open_database
from callhistory.db.work import unit_of_work
from callhistory.ingest.schemas import IngestCallLog
from callhistory.ingest.service import Stored, ingest
from callhistory.keys import service as keys
from callhistory.kit.config import Settings
from tests.harness import Api, ServerThread, Tenant, cli, new_tenant, post_at_once


def call(source_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "started_at": "2025-05-01T09:00:00+07:00",
        "ended_at": "2025-05-01T09:02:10+07:00",
        "caller": "0912345678",
        "callee": "19006868",
        "direction": "in",
        **fields,
    }


def rows(api: Api, tenant: Tenant) -> list[dict[str, Any]]:
    return [r for p in api.walk(tenant.read, {"paging": {"limit": 1000}}) for r in p]


def test_same_source_id_twice_is_one_call(api: Api, tenant: Tenant) -> None:
    first = api.ingest(tenant.ingest, [call("a")])[0]
    stored = rows(api, tenant)
    again = api.ingest(tenant.ingest, [call("a")])[0]
    assert first["created"] is True and again["created"] is False
    assert again["id"] == first["id"]
    assert rows(api, tenant) == stored  # nothing changed, not even updated_at


def test_later_cdr_updates_in_place(api: Api, tenant: Tenant) -> None:
    first = api.ingest(tenant.ingest, [call("b", ended_at=None)])[0]
    before = rows(api, tenant)[0]
    assert before["call_status"] == "S" and before["call_state"] == "unknown"
    time.sleep(0.002)
    api.ingest(tenant.ingest, [call("b", note="called back")])
    after = rows(api, tenant)
    assert len(after) == 1
    assert after[0]["id"] == first["id"]
    assert after[0]["created_at"] == before["created_at"]
    assert after[0]["updated_at"] > before["updated_at"]
    assert after[0]["note"] == "called back"
    assert after[0]["ended_at"] == "2025-05-01T02:02:10Z"


def test_source_ids_are_per_tenant(api: Api, tenant: Tenant, database_url: str) -> None:
    from tests.harness import new_tenant

    other = new_tenant(database_url)
    mine = api.ingest(tenant.ingest, [call("same")])[0]
    theirs = api.ingest(other.ingest, [call("same")])[0]
    assert mine["created"] and theirs["created"] and mine["id"] != theirs["id"]


def test_one_bad_item_rejects_the_whole_batch(api: Api, tenant: Tenant) -> None:
    batch = [call(f"ok-{i}") for i in range(5)]
    batch[3]["started_at"] = "yesterday"
    envelope = api.error(
        "IngestCallLogs", {"call_logs": batch}, tenant.ingest, 400, "invalid_argument", prefix="pbx"
    )
    assert envelope["meta"]["field"] == "call_logs[3].started_at"
    assert rows(api, tenant) == []


def test_field_paths_reach_into_targets(api: Api, tenant: Tenant) -> None:
    bad = call("t", call_targets=[{"target_number": "101"}, {"status": "ringing"}])
    envelope = api.error(
        "IngestCallLogs",
        {"call_logs": [call("x"), bad]},
        tenant.ingest,
        400,
        "invalid_argument",
        prefix="pbx",
    )
    assert envelope["meta"]["field"] == "call_logs[1].call_targets[1].status"


def test_missing_source_id_is_named(api: Api, tenant: Tenant) -> None:
    item = call("x")
    del item["source_id"]
    envelope = api.error(
        "IngestCallLogs",
        {"call_logs": [item]},
        tenant.ingest,
        400,
        "invalid_argument",
        prefix="pbx",
    )
    assert envelope["meta"]["field"] == "call_logs[0].source_id"
    assert "source_id" in envelope["msg"]


def test_state_status_and_duration_are_derived_from_targets(api: Api, tenant: Tenant) -> None:
    targets = [
        {
            "target_number": "101",
            "ring_time": "2025-05-01T09:00:01+07:00",
            "ended_time": "2025-05-01T09:00:15+07:00",
            "status": "no_answer",
            "end_reason": "NO_ANSWER",
            "fail_code": 480,
        },
        {
            "target_number": "102",
            "ring_time": "2025-05-01T09:00:15+07:00",
            "answered_time": "2025-05-01T09:00:20+07:00",
            "ended_time": "2025-05-01T09:02:10+07:00",
        },
    ]
    api.ingest(tenant.ingest, [call("d", call_targets=targets)])
    row = rows(api, tenant)[0]
    assert row["call_state"] == "answered"
    assert row["call_status"] == "P"
    assert row["duration"] == 110
    legs = row["call_targets"]
    assert [leg["status"] for leg in legs] == ["no_answer", "answered"]
    assert legs[1]["ring_duration"] == 5 and legs[0]["ring_duration"] == 14
    assert legs[1]["answered_time"] == "2025-05-01T02:00:20Z"
    assert legs[0]["fail_code"] == 480 and legs[1]["fail_code"] == 0
    assert set(legs[0]) == {
        "add_time",
        "answered_time",
        "end_reason",
        "ended_time",
        "fail_code",
        "ring_duration",
        "ring_time",
        "status",
        "target_number",
        "trunk_name",
    }


def test_target_times_are_served_in_utc_however_written(api: Api, tenant: Tenant) -> None:
    """A time already written as the API writes it comes back as sent; other ISO 8601
    spellings of an instant come back in that one form."""
    target = {
        "target_number": "101",
        "add_time": "2025-05-01T02:00:00Z",
        "ring_time": "2025-W18-4T02:00:01Z",  # ISO week date: Thursday of week 18 is 1 May
        "answered_time": "2025-05-01T09:00:05+07:00",
        "ended_time": "2025-05-01T02:01:00.500Z",
    }
    api.ingest(tenant.ingest, [call("w", call_targets=[target])])
    leg = rows(api, tenant)[0]["call_targets"][0]
    assert [leg[name] for name in ("add_time", "ring_time", "answered_time", "ended_time")] == [
        "2025-05-01T02:00:00Z",
        "2025-05-01T02:00:01Z",
        "2025-05-01T02:00:05Z",
        "2025-05-01T02:01:00.500Z",
    ]
    assert leg["ring_duration"] == 4


def test_unanswered_finished_call(api: Api, tenant: Tenant) -> None:
    api.ingest(
        tenant.ingest, [call("n", call_targets=[{"target_number": "101", "status": "busy"}])]
    )
    row = rows(api, tenant)[0]
    assert (row["call_state"], row["call_status"], row["duration"]) == ("not_answered", "N", 0)
    assert row["call_targets"][0]["answered_time"] is None


def test_time_without_offset_is_in_the_tenant_zone(api: Api, tenant: Tenant) -> None:
    api.ingest(tenant.ingest, [call("tz", started_at="2025-05-01T09:00:00", ended_at=None)])
    assert rows(api, tenant)[0]["started_at"] == "2025-05-01T02:00:00Z"


def test_references_must_exist_in_the_tenant(api: Api, tenant: Tenant) -> None:
    envelope = api.error(
        "IngestCallLogs",
        {"call_logs": [call("r", extension_id="12345")]},
        tenant.ingest,
        400,
        "invalid_argument",
        prefix="pbx",
    )
    assert envelope["meta"]["field"] == "call_logs[0].extension_id"


def test_calls_are_attributed_from_directory_numbers(api: Api, tenant: Tenant) -> None:
    hotline = api.ok("CreateHotline", {"hotline": "1900 6868"}, tenant.admin)
    user = api.ok("CreateUser", {"full_name": "Lan"}, tenant.admin)
    ext = api.ok(
        "CreateExtension",
        {"extension_number": 105, "user_id": user["id"], "hotline_id": hotline["id"]},
        tenant.admin,
    )
    answered = [{"target_number": "105", "answered_time": "2025-05-01T09:00:05+07:00"}]
    api.ingest(tenant.ingest, [call("attr", call_targets=answered)])
    row = rows(api, tenant)[0]
    assert row["hotline_id"] == hotline["id"]
    assert row["extension_id"] == ext["id"]
    assert row["user_id"] == user["id"]


def test_batch_limits(api: Api, tenant: Tenant) -> None:
    api.error(
        "IngestCallLogs", {"call_logs": []}, tenant.ingest, 400, "invalid_argument", prefix="pbx"
    )
    many = [call(f"m{i}") for i in range(1001)]
    api.error(
        "IngestCallLogs", {"call_logs": many}, tenant.ingest, 400, "invalid_argument", prefix="pbx"
    )


def test_ingest_needs_an_ingest_key(api: Api, tenant: Tenant) -> None:
    api.error(
        "IngestCallLogs",
        {"call_logs": [call("k")]},
        tenant.read,
        403,
        "permission_denied",
        prefix="pbx",
    )
    assert rows(api, tenant) == []


def test_concurrent_batches_are_all_stored(api: Api, tenant: Tenant) -> None:
    """Batches posted at once queue for the write lock; none is lost, none fails."""
    batches = [[call(f"c{b}-{i}") for i in range(50)] for b in range(12)]
    items = post_at_once(str(api.http.base_url), tenant.ingest, batches)
    assert all(item["created"] for item in items)
    assert len({c["id"] for c in rows(api, tenant)}) == 12 * 50


def test_the_same_calls_posted_at_once_are_stored_once(api: Api, tenant: Tenant) -> None:
    """PBXs retry: identical batches racing each other create each call exactly once."""
    batches = [[call(f"same-{r}-{i}") for i in range(50)] for r in range(4) for _ in range(6)]
    items = post_at_once(str(api.http.base_url), tenant.ingest, batches)
    assert sum(item["created"] for item in items) == 4 * 50
    assert len({item["id"] for item in items}) == 4 * 50
    assert len(rows(api, tenant)) == 4 * 50


def test_more_concurrent_batches_than_pooled_connections(database_url: str, server: object) -> None:
    """A write must not need two connections of one pool: with more batches in flight than
    connections, each would hold one and wait for another."""
    tenant = new_tenant(database_url, name="small pool")
    settings = Settings(database_url=database_url, pool_size=2, rate_limit_per_second=0)
    batches = [[call(f"p{b}-{i}") for i in range(20)] for b in range(6)]
    with ServerThread(settings) as server:
        items = post_at_once(server.base_url, tenant.ingest, batches)
    assert sum(item["created"] for item in items) == 6 * 20


def test_a_call_stored_after_the_batch_looked_is_stored_once(tmp_path: Path) -> None:
    """On SQLite a batch its read snapshot finds no call of is inserted without a second look
    under the write lock. A call that a concurrent batch stored in between (a PBX retrying a
    slow post) must still come out once, updated, and the rest of the batch created, even when
    the clash is in a later INSERT than the first of the batch."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    cli("migrate", "--database", url)
    tenant = new_tenant(url)

    def item(source_id: str, note: str = "") -> IngestCallLog:
        return msgspec.convert(call(source_id, note=note), IngestCallLog)

    async def go() -> tuple[list[Stored], list[Stored]]:
        db = open_database(Settings(database_url=url))
        try:
            async with unit_of_work(db, write=True) as stale:
                # The snapshot starts here, before the first batch commits.
                principal = await keys.tenant_principal(stale.read, tenant_id=int(tenant.id))
                async with unit_of_work(db, write=True) as work:
                    first = await ingest(work, principal=principal, items=[item("retry", "one")])
                batch = [item(f"fresh-{i}") for i in range(149)] + [item("retry", "two")]
                second = await ingest(stale, principal=principal, items=batch)
            return first, second
        finally:
            await db.dispose()

    first, second = asyncio.run(go())
    assert [(r.source_id, r.outcome) for r in second[-1:]] == [("retry", "updated")]
    assert second[-1].id == first[0].id
    assert all(r.outcome == "created" for r in second[:-1])
    with sqlite3.connect(tmp_path / "race.db") as db:
        stored = db.execute(
            "SELECT source_id, note FROM call_logs WHERE tenant_id = ?", (int(tenant.id),)
        ).fetchall()
    assert len(stored) == 150
    assert ("retry", "two") in stored


def test_a_batch_waits_while_another_process_writes(tmp_path: Path) -> None:
    """A batch that finds SQLite's write lock held by another process (a second worker, the
    CLI importing files) waits for it rather than failing, and is stored once it is free."""
    path = tmp_path / "busy.db"
    cli("migrate", "--database", f"sqlite:///{path}")
    tenant = new_tenant(f"sqlite:///{path}")
    with ServerThread(Settings(database_url=f"sqlite:///{path}")) as server:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(post_at_once, server.base_url, tenant.ingest, [[call("w")]])
            time.sleep(0.5)
            waited = not pending.done()
            other.execute("COMMIT")
            items = pending.result(timeout=30)
        other.close()
    assert waited
    assert [(item["source_id"], item["created"]) for item in items] == [("w", True)]
