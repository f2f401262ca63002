"""Every filter, with the default sort, is answered by an index: no full scan, no sort step."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from callhistory.calllogs.query import CallLogQuery
from callhistory.calllogs.repository import PAGE_COLUMNS, _scan
from tests.harness import Api, Tenant

QUERIES: dict[str, CallLogQuery] = {
    "none": CallLogQuery(),
    "date": CallLogQuery(date_from=1, date_to=2),
    "call_state": CallLogQuery(call_state="answered"),
    "direction": CallLogQuery(direction="in"),
    "duration": CallLogQuery(duration_op=">", duration_value=30),
    "call_number": CallLogQuery(call_number="0912345678"),
    "extension_ids": CallLogQuery(extension_ids=(1, 2, 3)),
    "hotline_ids": CallLogQuery(hotline_ids=(4, 5)),
    "user_id": CallLogQuery(user_id=6),
    "department_id": CallLogQuery(department_id=7),
    "external_id": CallLogQuery(external_id="sdk"),
    "external_session_id": CallLogQuery(external_session_id="sess"),
}


def plan(path: str, select: sa.Select[Any]) -> list[str]:
    sql = str(select.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with sqlite3.connect(path) as conn:
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]


@pytest.mark.parametrize("name", list(QUERIES))
@pytest.mark.parametrize("deep", [False, True])
def test_sqlite_plan_uses_an_index(
    database_url: str, api: Api, tenant: Tenant, name: str, deep: bool
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite plan")
    select = _scan(
        PAGE_COLUMNS,
        tenant_id=int(tenant.id),
        query=QUERIES[name],
        sort="-started_at",
        key=(10**15, 10**17) if deep else None,
        forward=True,
        limit=101,
    )
    steps = plan(database_url.removeprefix("sqlite:///"), select)
    text = "\n".join(steps)
    call_log_steps = [s for s in steps if "call_logs" in s]
    assert call_log_steps, text
    assert all(s.startswith("SEARCH") and "INDEX" in s for s in call_log_steps), text
    assert "TEMP B-TREE FOR ORDER BY" not in text or "UNION" in text, text
