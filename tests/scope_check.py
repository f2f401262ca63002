"""Fails any SQL statement that reads or changes tenant data without filtering by tenant_id.

Installed on every engine for the whole test run; a violation raises inside the server, so the
request fails and so does the test that made it. Statements that deliberately span tenants
(retention) carry the ``callhistory_all_tenants`` execution option.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from callhistory.db.citus import placement

# Every table of tenant data: the tables Citus distributes by tenant_id.
TENANT_TABLES = tuple(name for name, kind in placement() if kind == "distributed")
_REFERENCE = re.compile(r"\b(?:FROM|JOIN|UPDATE)\s+(" + "|".join(TENANT_TABLES) + r")\b", re.I)
_SCOPED = re.compile(r"\btenant_id\s*(?:=|IN\b)", re.I)
violations: list[str] = []


class UnscopedQuery(AssertionError):
    pass


def _check(
    conn: sa.Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
) -> None:
    head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
    if head not in ("SELECT", "UPDATE", "DELETE", "WITH"):
        return
    if context is not None and context.execution_options.get("callhistory_all_tenants"):
        return
    references = len(_REFERENCE.findall(statement))
    if references and len(_SCOPED.findall(statement)) < references:
        violations.append(statement)
        raise UnscopedQuery(f"query of tenant data not scoped by tenant_id:\n{statement}")


def install() -> None:
    if not event.contains(sa.engine.Engine, "before_cursor_execute", _check):
        event.listen(sa.engine.Engine, "before_cursor_execute", _check)
