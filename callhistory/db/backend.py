"""What a domain's SQL may depend on, per store. Domains ask a connection for its ``Backend``
and read named traits; no domain names a dialect."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class Backend:
    name: str
    # ``insert(table)`` with ``on_conflict_do_update`` / ``on_conflict_do_nothing``.
    insert: Callable[[Any], Any]
    # call_logs is partitioned by month of started_at: pages walk month by month, retention
    # drops whole months, and no index can make (tenant_id, source_id) unique.
    monthly_partitions: bool
    # Writers run one at a time (SQLite's BEGIN IMMEDIATE), so a tenant's batches need no lock.
    serial_writers: bool
    # A page of an OR filter picks its ids first and reads their columns after (SQLite's planner
    # does that best; PostgreSQL joining back over its partitions was slower).
    late_columns: bool

    @property
    def unique_source_ids(self) -> bool:
        """The store itself refuses a second call with a tenant's source id."""
        return not self.monthly_partitions


SQLITE = Backend(
    name="sqlite",
    insert=sqlite.insert,
    monthly_partitions=False,
    serial_writers=True,
    late_columns=True,
)
POSTGRESQL = Backend(
    name="postgresql",
    insert=postgresql.insert,
    monthly_partitions=True,
    serial_writers=False,
    late_columns=False,
)
_BY_NAME = {backend.name: backend for backend in (SQLITE, POSTGRESQL)}


def backend(of: AsyncConnection | str) -> Backend:
    """The backend of a connection (or of a dialect name: tools that build SQL offline)."""
    return _BY_NAME[of if isinstance(of, str) else of.dialect.name]
