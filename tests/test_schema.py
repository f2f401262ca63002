"""The live schema, read back from the database: built by the migrations, ready to be
distributed by tenant, and partitioned by month on PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from callhistory.db.engine import create_engine
from callhistory.db.tables import metadata
from callhistory.kit.config import Settings
from tests import scope_check
from tests.harness import ServerThread, partition_names, run_sql

GLOBAL_TABLES = {
    "tenants",
    "api_keys",
    "service_state",
    "id_nodes",
    "alembic_version",
    "pbx_accounts",
    "pbx_tenants",
    "routing_numbers",
}


def inspect(database_url: str, fn: Any) -> Any:
    async def run() -> Any:
        engine = create_engine(Settings(database_url=database_url))
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_every_key_and_index_of_tenant_data_starts_with_tenant_id(
    database_url: str, server: ServerThread
) -> None:
    def read(conn: sa.Connection) -> dict[str, Any]:
        insp = sa.inspect(conn)
        tables = [
            t
            for t in insp.get_table_names()
            if t not in GLOBAL_TABLES and not t.startswith("call_logs_p")
        ]
        return {
            t: {
                "pk": insp.get_pk_constraint(t)["constrained_columns"],
                "unique": [u["column_names"] for u in insp.get_unique_constraints(t)],
                "indexes": [(i["name"], i["column_names"]) for i in insp.get_indexes(t)],
                "fks": [
                    (f["constrained_columns"], f["referred_table"])
                    for f in insp.get_foreign_keys(t)
                ],
            }
            for t in tables
        }

    schema = inspect(database_url, read)
    assert set(schema) == {
        "call_logs",
        "call_legs",
        "call_log_erasures",
        "call_stats_days",
        "call_stats_hours",
        "change_counters",
        "hotlines",
        "departments",
        "users",
        "extensions",
        "webhook_endpoints",
        "webhook_events",
        "webhook_deliveries",
        "webhook_attempts",
        "recordings",
    }
    for table, found in schema.items():
        assert found["pk"][0] == "tenant_id", (table, found["pk"])
        for columns in found["unique"]:
            assert columns[0] == "tenant_id", (table, columns)
        for name, columns in found["indexes"]:
            assert columns[0] == "tenant_id", (table, name, columns)
        # Directory references carry the tenant, so distributed tables stay co-located.
        for columns, referred in found["fks"]:
            if referred != "tenants":
                assert columns[0] == "tenant_id", (table, columns)


def _declared(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
    """Leave out what the service makes at run time (monthly partitions) and the source-id
    index declared for one backend only (unique on SQLite, plain on PostgreSQL)."""
    table = obj if kind == "table" else getattr(obj, "table", None)
    if table is not None and table.name.startswith("call_logs_p"):
        return False
    return not (kind == "index" and name in ("uq_call_logs_source", "ix_call_logs_source"))


def test_migrations_build_exactly_the_declared_schema(
    database_url: str, server: ServerThread
) -> None:
    def diff(conn: sa.Connection) -> list[Any]:
        opts = {"compare_type": True, "include_object": _declared}
        return list(compare_metadata(MigrationContext.configure(conn, opts=opts), metadata))

    assert inspect(database_url, diff) == []


@pytest.mark.only_on("postgresql")
def test_call_logs_are_partitioned_by_month_on_postgresql(
    database_url: str, server: ServerThread
) -> None:

    [(strategy,)] = run_sql(database_url, "SELECT pg_get_partkeydef('call_logs'::regclass)")
    partitions = sorted(partition_names(database_url))
    assert strategy == "RANGE (started_at)"
    # The serving process created this month's and the next months' partitions ahead of time.
    import time

    now = time.gmtime()
    assert f"call_logs_p{now.tm_year:04d}{now.tm_mon:02d}" in partitions
    assert len(partitions) >= 3


def test_unscoped_queries_are_caught(database_url: str, server: ServerThread) -> None:
    def unscoped(conn: sa.Connection) -> None:
        conn.execute(sa.text("SELECT count(*) FROM call_logs"))

    with pytest.raises(scope_check.UnscopedQuery):
        inspect(database_url, unscoped)
    scope_check.violations.pop()
