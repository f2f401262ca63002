"""A runaway SQLite read is interrupted by its time budget and answered as unavailable."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from callhistory.config import Settings
from callhistory.db.engine import fetch, open_database, transaction
from callhistory.rpc import unexpected

SLOW = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000000) "
    "SELECT count(*) FROM c"
)


def run(tmp_path: Path, budget_ms: int, sql: str, *, on_driver: bool = False) -> object:
    """One read, through SQLAlchemy or on the driver (``db.engine.fetch``, the hot path)."""

    async def go() -> object:
        db = open_database(
            Settings(database_url=f"sqlite:///{tmp_path}/b.db", statement_timeout_ms=budget_ms)
        )
        try:
            async with transaction(db, write=False) as conn:
                if on_driver:
                    return (await fetch(conn, sa.text(sql), {}))[0][0]
                return (await conn.execute(sa.text(sql))).scalar_one()
        finally:
            await db.dispose()

    return asyncio.run(go())


@pytest.mark.parametrize("on_driver", [False, True])
def test_runaway_read_is_interrupted_as_unavailable(tmp_path: Path, on_driver: bool) -> None:
    with pytest.raises((sa.exc.OperationalError, sqlite3.OperationalError)) as caught:
        run(tmp_path, 50, SLOW, on_driver=on_driver)
    assert "interrupted" in str(caught.value)
    assert unexpected(caught.value).code == "unavailable"


@pytest.mark.parametrize("on_driver", [False, True])
def test_reads_within_budget_are_untouched(tmp_path: Path, on_driver: bool) -> None:
    assert run(tmp_path, 5000, "SELECT 41 + 1", on_driver=on_driver) == 42
