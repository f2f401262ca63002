"""Retention removes old calls on both backends; on PostgreSQL by dropping whole months."""

from __future__ import annotations

import asyncio
import datetime as dt
from contextlib import closing

import sqlalchemy as sa

from callhistory.config import Settings
from callhistory.db.engine import create_engine
from tests.harness import Api, ServerThread, cli, cli_json, new_tenant


def partitions(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_engine(Settings(database_url=url))
        try:
            async with engine.connect() as conn:
                result = await conn.execute(
                    sa.text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = 'call_logs'::regclass"
                    )
                )
                return set(result.scalars())
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_retention_removes_calls_older_than_the_cutoff(fresh_database_url: str) -> None:
    url = fresh_database_url
    cli("migrate", "--database", url)
    now = dt.datetime.now(dt.UTC)
    ages = {"a": 500, "b": 420, "c": 399, "d": 30, "e": 1}
    with (
        ServerThread(Settings(database_url=url, access_log=False)) as server,
        closing(Api(server.base_url)) as api,
    ):
        tenants = [new_tenant(url), new_tenant(url)]
        for t in tenants:
            items = [
                {"source_id": s, "started_at": (now - dt.timedelta(days=days)).isoformat()}
                for s, days in ages.items()
            ]
            api.ingest(t.ingest, items)
        old_month = "call_logs_p" + (now - dt.timedelta(days=500)).strftime("%Y%m")
        if url.startswith("postgresql"):
            assert old_month in partitions(url)
        result = cli_json("retention", "apply", "--older-than", "400d", "--database", url)
        assert result == {"removed": 4}
        for t in tenants:
            rows = [r for p in api.walk(t.read, {"paging": {"limit": 1000}}) for r in p]
            assert len(rows) == 3
        if url.startswith("postgresql"):
            assert old_month not in partitions(url)


def test_retention_needs_a_number_of_days(fresh_database_url: str) -> None:
    from typer.testing import CliRunner

    from callhistory.cli import app

    result = CliRunner().invoke(
        app, ["retention", "apply", "--older-than", "soon", "--database", fresh_database_url]
    )
    assert result.exit_code == 2
