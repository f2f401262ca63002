"""Crash safety: ingest from concurrent clients, SIGKILL the server at random moments, restart;
every call acknowledged with a 200 is stored exactly once and the database is sound."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import threading
import time
from typing import Any

import httpx
import sqlalchemy as sa

from callhistory.db.engine import create_engine
from callhistory.kit.config import Settings
from tests.harness import Api, new_tenant, start_serve


def integrity(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return

    async def check() -> None:
        engine = create_engine(Settings(database_url=database_url))
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS amcheck"))
            names = (
                (
                    await conn.execute(
                        sa.text(
                            "SELECT c.oid::regclass::text FROM pg_index i "
                            "JOIN pg_class c ON c.oid = i.indexrelid "
                            "JOIN pg_class t ON t.oid = i.indrelid WHERE c.relkind = 'i' "
                            "AND (t.relname LIKE 'call_%' OR t.relname IN ('api_keys', 'tenants'))"
                        )
                    )
                )
                .scalars()
                .all()
            )
            assert names
            for name in names:
                await conn.execute(sa.text(f"SELECT bt_index_check('{name}'::regclass, true)"))
        await engine.dispose()

    asyncio.run(check())


def test_killed_server_keeps_every_acknowledged_call_once(
    database_url: str, server: object
) -> None:
    tenant = new_tenant(database_url)
    rng = random.Random(3)
    acked: set[str] = set()
    lock = threading.Lock()
    counter = iter(range(10**9))

    def client(base: str, stop: threading.Event) -> None:
        with httpx.Client(base_url=base, timeout=10) as http:
            while not stop.is_set():
                with lock:
                    numbers = [f"09{next(counter):08d}" for _ in range(25)]
                items: list[dict[str, Any]] = [
                    {"source_id": n, "started_at": "2025-08-01T10:00:00+07:00", "caller": n}
                    for n in numbers
                ]
                try:
                    response = http.post(
                        "/v1/pbx.Etelecom/IngestCallLogs",
                        json={"call_logs": items},
                        headers={"Authorization": f"Bearer {tenant.ingest}"},
                    )
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    with lock:
                        acked.update(numbers)

    for _ in range(3):
        process, base = start_serve(database_url)
        stop = threading.Event()
        threads = [threading.Thread(target=client, args=(base, stop)) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.4, 1.2))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert acked, "no batch was acknowledged before the kills"
    process, base = start_serve(database_url)
    try:
        api = Api(base)
        stored = [
            r["caller"] for p in api.walk(tenant.read, {"paging": {"limit": 1000}}) for r in p
        ]
        api.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert len(stored) == len(set(stored)), "a call was stored twice"
    assert acked <= set(stored), f"{len(acked - set(stored))} acknowledged calls were lost"
    integrity(database_url)
