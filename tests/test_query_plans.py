"""Every filter, with the default sort, is answered by an index: no full scan, no sort step."""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
import time
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from callhistory.calllogs.documents import call_log_json
from callhistory.calllogs.query import CallLogQuery
from callhistory.calllogs.repository import page_select, window_statements
from callhistory.db import partitions
from callhistory.db.backend import SQLITE
from callhistory.db.engine import create_engine
from callhistory.db.tables import call_logs
from callhistory.kit.config import Settings
from tests.harness import Api, Tenant, new_tenant

QUERIES: dict[str, CallLogQuery] = {
    "none": CallLogQuery(),
    "date": CallLogQuery(date_from=1_710_000_000_000_000, date_to=1_712_000_000_000_000),
    "call_state": CallLogQuery(call_state="answered"),
    "direction": CallLogQuery(direction="in"),
    "duration": CallLogQuery(duration_op=">", duration_value=30),
    "duration (long calls)": CallLogQuery(duration_op=">", duration_value=600),
    "duration (exact, very long)": CallLogQuery(duration_op="=", duration_value=7200),
    "call_number": CallLogQuery(call_number="0912345678"),
    "extension_ids": CallLogQuery(extension_ids=(1, 2, 3)),
    "extension_ids (a long list)": CallLogQuery(extension_ids=tuple(range(1, 31))),
    "extension_ids (unknown ones)": CallLogQuery(extension_ids=tuple(range(10**6, 10**6 + 100))),
    "hotline_ids": CallLogQuery(hotline_ids=(4, 5)),
    "hotline_ids (a long list)": CallLogQuery(hotline_ids=tuple(range(1, 11))),
    "user_id": CallLogQuery(user_id=6),
    "department_id": CallLogQuery(department_id=7, members=(11, 12, 13)),
    "department_id (no members)": CallLogQuery(department_id=7, members=()),
    "department_id (not yet resolved)": CallLogQuery(department_id=7),
    "external_id": CallLogQuery(external_id="sdk"),
    "external_session_id": CallLogQuery(external_session_id="sess"),
}


def plan(path: str, select: sa.Select[Any]) -> list[str]:
    sql = str(select.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with sqlite3.connect(path) as conn:
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]


@pytest.mark.only_on("sqlite")
@pytest.mark.parametrize("name", list(QUERIES))
@pytest.mark.parametrize("deep", [False, True])
def test_sqlite_plan_uses_an_index(
    database_url: str, api: Api, tenant: Tenant, name: str, deep: bool
) -> None:
    [(statement, values)] = window_statements(  # the statement the service runs on SQLite
        SQLITE,
        int(tenant.id),
        QUERIES[name],
        sort="-started_at",
        key=(10**15, 10**17) if deep else None,
        forward=True,
        limit=101,
    )
    select = statement.params(values)
    steps = plan(database_url.removeprefix("sqlite:///"), select)
    text = "\n".join(steps)
    call_log_steps = [s for s in steps if "call_logs" in s]
    assert call_log_steps, text
    assert all(s.startswith("SEARCH") and "INDEX" in s for s in call_log_steps), text
    assert "TEMP B-TREE FOR ORDER BY" not in text or "UNION" in text, text


@pytest.mark.parametrize(
    ("op", "value", "index"),
    [
        (">", 30, None),
        ("<", 900, None),
        ("!=", 3600, None),
        (">", 299, "ix_call_logs_over_300s"),
        (">=", 600, "ix_call_logs_over_300s"),
        (">", 1799, "ix_call_logs_over_1800s"),
        ("=", 3600, "ix_call_logs_over_1800s"),
    ],
)
@pytest.mark.only_on("sqlite")
def test_sqlite_long_call_filters_walk_only_long_calls(
    database_url: str, api: Api, tenant: Tenant, op: str, value: int, index: str | None
) -> None:
    """A filter only long calls can match walks the index of its tier of long calls, not the
    index of every call (where "longer than an hour" read a whole tenant). Other filters walk
    an index of every call (``None``: which one is the planner's choice)."""
    select = page_select(
        tenant_id=int(tenant.id),
        query=CallLogQuery(duration_op=op, duration_value=value),
        sort="-started_at",
        key=None,
        forward=True,
        limit=101,
    )
    steps = plan(database_url.removeprefix("sqlite:///"), select)
    if index is None:
        assert len(steps) == 1 and steps[0].startswith("SEARCH call_logs USING"), steps
        assert "_over_" not in steps[0], steps
    else:
        assert steps == [f"SEARCH call_logs USING INDEX {index} (tenant_id=?)"], steps


BIG = 100_000


@pytest.fixture(scope="module")
def big_tenant(database_url: str, server: object) -> tuple[int, set[str]]:
    """A tenant with 100k calls over two years (and a small neighbour), analysed."""
    tenant_id = int(new_tenant(database_url).id)
    neighbour = int(new_tenant(database_url).id)
    rng = random.Random(5)
    start = 1_700_000_000_000_000
    span = 2 * 365 * 86_400_000_000

    def row(i: int, tenant: int) -> dict[str, Any]:
        direction = rng.choice(["in", "out", "ext"])
        number = f"09{rng.randrange(10**8):08d}"
        values = {
            "tenant_id": tenant,
            "id": 10**17 + i,
            "source_id": f"s{i}",
            "caller": number,
            "callee": "19006868",
            "caller_norm": number,
            "callee_norm": "19006868",
            "direction": direction,
            "call_state": rng.choice(["answered", "not_answered"]),
            "call_status": "P",
            "started_at": start + rng.randrange(span),
            "ended_at": None,
            "duration": rng.randrange(600),
            "extension_id": rng.choice([None, *range(1, 40)]),
            "user_id": rng.choice([None, *range(1, 40)]),
            "hotline_id": rng.choice([None, 1, 2, 3]),
            "contact_id": None,
            "external_id": rng.choice([None] * 20 + [f"sdk-{i}"]),
            "external_session_id": rng.choice([None] * 20 + [f"sess-{i}"]),
            "recording_urls": "[]",
            "call_targets": "[]",
            "note": "",
            "created_at": start + i,
            "updated_at": start + i,
        }
        return values | {"doc": call_log_json(values)}

    rows = [row(i, tenant_id) for i in range(BIG)] + [row(BIG + i, neighbour) for i in range(1000)]

    async def load() -> None:
        engine = create_engine(Settings(database_url=database_url))
        try:
            async with engine.begin() as conn:
                await partitions.ensure_partitions(conn, started=[r["started_at"] for r in rows])
                for chunk in range(0, len(rows), 5000):
                    await conn.execute(call_logs.insert(), rows[chunk : chunk + 5000])
            async with engine.connect() as conn:
                await conn.execute(sa.text("ANALYZE call_logs"))
                await conn.commit()
        finally:
            await engine.dispose()

    asyncio.run(load())
    populated = {
        "call_logs_p" + time.strftime("%Y%m", time.gmtime(r["started_at"] // 10**6)) for r in rows
    }
    return tenant_id, populated


def pg_plan(database_url: str, select: sa.Select[Any]) -> str:
    """PostgreSQL's plan of a page as the service's connections come to run it: a prepared
    statement, executed a few times with these values (PostgreSQL then keeps a plan made
    without them when it costs no more than those made with them)."""

    async def explain() -> str:
        engine = create_engine(Settings(database_url=database_url))
        try:
            async with engine.connect() as conn:
                compiled = select.compile(dialect=conn.dialect)
                params = compiled.construct_params()
                values = ", ".join(_literal(params[name]) for name in compiled.positiontup or ())
                driver = (await conn.get_raw_connection()).driver_connection
                assert driver is not None
                await driver.execute(f"PREPARE page AS {compiled}")
                for _ in range(6):
                    await driver.execute(f"EXECUTE page({values})")
                rows = await driver.fetch(f"EXPLAIN EXECUTE page({values})")
                return "\n".join(row[0] for row in rows)
        finally:
            await engine.dispose()

    return asyncio.run(explain())


def _literal(value: object) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


@pytest.mark.only_on("postgresql")
@pytest.mark.parametrize("name", list(QUERIES))
@pytest.mark.parametrize("deep", [False, True])
def test_postgresql_plan_uses_an_index_at_100k_calls(
    database_url: str, big_tenant: tuple[int, set[str]], name: str, deep: bool
) -> None:
    """A tenant holding nearly every call of the database (as here) is walked along an index,
    not scanned and sorted whole, also once PostgreSQL keeps a plan made without the values
    (an unfiltered page's)."""
    tenant_id, populated = big_tenant
    select = page_select(
        tenant_id=tenant_id,
        query=QUERIES[name],
        sort="-started_at",
        key=(1_700_000_000_000_000 + 365 * 86_400_000_000, 10**17 + 50_000) if deep else None,
        forward=True,
        limit=101,
    )
    text = pg_plan(database_url, select)
    # Empty partitions made ahead of time may be "scanned" at zero cost; no partition with calls.
    scanned = set(re.findall(r"Seq Scan on (call_logs\w*)", text))
    assert not scanned & (populated | {"call_logs"}), text
    assert "Index" in text, text
    if name == "none":  # the page whose plan is kept: read in order, never sorted
        assert not re.search(r"^\s*(->\s*)?Sort ", text, re.M), text
