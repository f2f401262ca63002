"""What a domain's SQL may depend on, per store. Domains ask a connection for its ``Backend``
and read named traits; no domain names a dialect."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
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
    # Tables are distributed by tenant over several nodes (Citus): a statement spanning
    # tenants may read, but rows it locks must be locked tenant by tenant, and partitions are
    # detached in one step (DETACH … CONCURRENTLY is PostgreSQL's alone).
    sharded: bool = False
    # A prepared statement whose plan no value changes is planned once per connection and kept
    # (PostgreSQL's plan cache): an unfiltered first page is one statement over every month,
    # at the cost of one month. (Citus plans each shard's statement anew at every call.)
    kept_plans: bool = False

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
    kept_plans=True,
)
CITUS = replace(POSTGRESQL, name="citus", sharded=True, kept_plans=False)
_BY_NAME = {backend.name: backend for backend in (SQLITE, POSTGRESQL, CITUS)}
# Set in a PostgreSQL connection's ``info`` when its database has the citus extension.
SHARDED = "callhistory_citus"


def backend(of: AsyncConnection | str) -> Backend:
    """The backend of a connection (or of a name: tools that build SQL offline)."""
    if isinstance(of, str):
        return _BY_NAME[of]
    if of.dialect.name == "postgresql" and of.info.get(SHARDED):
        return CITUS
    return _BY_NAME[of.dialect.name]
