"""Upgrading a database that already holds calls: they are served as before, field for field."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from callhistory.db.engine import create_engine
from callhistory.db.migrate import alembic_config, upgrade
from callhistory.kit.config import Settings
from tests.conftest import BACKENDS, Cluster
from tests.harness import Api, ServerThread, cli, cli_json, run_sql

_names = itertools.count()
_CALL = (
    "INSERT INTO call_logs (tenant_id, id, source_id, caller, callee, caller_norm, callee_norm, "
    "direction, call_state, call_status, started_at, ended_at, duration, extension_id, user_id, "
    "hotline_id, contact_id, external_id, external_session_id, recording_urls, call_targets, "
    "note, created_at, updated_at) VALUES (:tenant, :id, :source, '+84912345678', '19006868', "
    "'0912345678', '19006868', 'in', 'answered', 'P', :started, :ended, 42, NULL, NULL, NULL, "
    "NULL, :external, NULL, '[\"https://rec.example.vn/a.mp3\"]', "
    '\'[{"target_number":"101","status":"answered"}]\', \'đã gọi lại\', :started, :started)'
)


@pytest.fixture(params=BACKENDS)
def empty_database(
    request: pytest.FixtureRequest, tmp_path: Path, clusters: dict[str, Cluster | None]
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
    elif (cluster := clusters[request.param]) is None:
        pytest.skip("needs the tests' own PostgreSQL cluster to make a fresh database")
    else:
        yield cluster.create_database(f"migrations{next(_names)}")


def test_migrations_are_not_bound_by_the_request_statement_timeout(empty_database: str) -> None:
    """An upgrade may build indexes over millions of calls, or wait for a running ingest to let go
    of the table: it must not be cut off by the timeout that bounds each request's statements.
    Here an open writer holds ``call_logs`` for longer than that timeout while 0004 indexes it."""
    settings = Settings(database_url=empty_database, statement_timeout_ms=200)
    held_for = 1.0

    async def migrate() -> list[str]:
        engine = create_engine(settings)
        holder = create_engine(Settings(database_url=empty_database))
        try:
            await upgrade(holder, "0003")
            async with holder.connect() as writer:
                if writer.dialect.name == "postgresql":
                    await writer.execute(sa.text("LOCK TABLE call_logs IN ROW EXCLUSIVE MODE"))
                else:
                    await writer.execute(sa.text("UPDATE tenants SET name = name WHERE 0"))
                upgrading = asyncio.ensure_future(upgrade(engine))
                await asyncio.sleep(held_for)
                assert not upgrading.done(), "the upgrade did not wait for the open writer"
                await writer.rollback()
                await upgrading
            async with engine.connect() as conn:
                found = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                return list(found.scalars())
        finally:
            await engine.dispose()
            await holder.dispose()

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert asyncio.run(migrate()) == [head]


def test_calls_stored_before_an_upgrade_are_served_after_it(empty_database: str) -> None:
    url = empty_database

    async def at_0002() -> None:
        engine = create_engine(Settings(database_url=url))
        try:
            await upgrade(engine, "0002")
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text(
                        "INSERT INTO tenants (id, name, domain, timezone, status, created_at, "
                        "updated_at) VALUES (77, 'Old tenant', NULL, 'Asia/Ho_Chi_Minh', "
                        "'active', 0, 0)"
                    )
                )
                if conn.dialect.name == "postgresql":
                    await conn.execute(
                        sa.text(
                            "CREATE TABLE call_logs_p202403 PARTITION OF call_logs "
                            "FOR VALUES FROM (1709251200000000) TO (1711929600000000)"
                        )
                    )
                await conn.execute(
                    sa.text(_CALL),
                    [
                        {
                            "tenant": 77,
                            "id": 10**17 + 1,
                            "source": "old-1",
                            "started": 1_710_000_000_000_000,  # 2024-03-09T16:00:00Z
                            "ended": 1_710_000_060_500_000,
                            "external": "sdk-9",
                        },
                        {
                            "tenant": 77,
                            "id": 10**17 + 2,
                            "source": "old-2",
                            "started": 1_710_000_100_000_001,
                            "ended": None,
                            "external": None,
                        },
                        {
                            "tenant": 78,
                            "id": 10**17 + 3,
                            "source": "other",
                            "started": 1_710_000_200_000_000,
                            "ended": None,
                            "external": None,
                        },
                    ],
                )
        finally:
            await engine.dispose()

    asyncio.run(at_0002())
    cli("migrate", "--database", url)
    key = cli_json("key", "create", "--tenant", "77", "--scope", "read", "--database", url)["key"]
    with ServerThread(Settings(database_url=url, rate_limit_per_second=0)) as server:
        api = Api(server.base_url)
        try:
            calls = api.ok("ListCallLogs", {}, key)["call_logs"]
        finally:
            api.close()
    assert [c["id"] for c in calls] == [str(10**17 + 2), str(10**17 + 1)]
    newer, older = calls
    assert older == {
        "call_state": "answered",
        "call_status": "P",
        "call_targets": [{"target_number": "101", "status": "answered"}],
        "callee": "19006868",
        "caller": "+84912345678",
        "contact_id": "",
        "created_at": "2024-03-09T16:00:00Z",
        "direction": "in",
        "duration": 42,
        "ended_at": "2024-03-09T16:01:00.500Z",
        "extension_id": "",
        "external_id": "sdk-9",
        "external_session_id": "",
        "hotline_id": "",
        "id": str(10**17 + 1),
        "note": "đã gọi lại",
        "recording_urls": ["https://rec.example.vn/a.mp3"],
        "started_at": "2024-03-09T16:00:00Z",
        "updated_at": "2024-03-09T16:00:00Z",
        "user_id": "",
    }
    assert newer["started_at"] == "2024-03-09T16:01:40.000001Z"
    assert newer["ended_at"] is None
    assert newer["external_id"] == ""


def test_processes_started_at_once_migrate_one_after_the_other(empty_database: str) -> None:
    """Several `serve` (here `migrate`) processes started at once on an empty database: each
    succeeds, the schema is built once (on Citus: distributed once)."""
    command = [sys.executable, "-m", "callhistory", "migrate", "--database", empty_database]
    running = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    for process in running:
        _, errors = process.communicate(timeout=300)
        assert process.returncode == 0, errors
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert cli_json("tenant", "create", "--name", "After", "--database", empty_database)["id"]
    assert run_sql(empty_database, "SELECT version_num FROM alembic_version") == [(head,)]
