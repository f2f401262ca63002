"""Citus: every table of tenant data distributed by ``tenant_id``, co-located with call_logs
(so a tenant's rows of every table live on one node), and the global tables copied to every
node as reference tables. ``callhistory migrate`` does this after the Alembic migrations
whenever the database has the citus extension; tables created by later migrations are
distributed the same way on the next run.
"""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db.tables import metadata

# Small tables every request may read whatever its tenant (keys, the directory of tenants and
# PBXs, the service's own state): copied to every node.
REFERENCE_TABLES = frozenset(
    {
        "service_state",
        "id_nodes",
        "tenants",
        "api_keys",
        "pbx_accounts",
        "pbx_tenants",
        "routing_numbers",
    }
)
# The table the others are co-located with.
ANCHOR = "call_logs"
DISTRIBUTION_COLUMN = "tenant_id"

INSTALLED = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')"


async def installed(conn: AsyncConnection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    return bool((await conn.execute(sa.text(INSTALLED))).scalar())


def placement() -> list[tuple[str, str]]:
    """(table, "reference" or "distributed") for every table, in the order to create them:
    reference tables first (distributed tables refer to them), then the anchor, then the rest
    in the order of their foreign keys."""
    tables = [table.name for table in metadata.sorted_tables]
    reference = [(name, "reference") for name in tables if name in REFERENCE_TABLES]
    distributed = [
        (name, "distributed")
        for name in sorted(
            set(tables) - REFERENCE_TABLES, key=lambda n: (n != ANCHOR, tables.index(n))
        )
    ]
    return reference + distributed


_TABLES = sa.text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
_DISTRIBUTED = sa.text("SELECT logicalrelid::regclass::text FROM pg_dist_partition")
# The foreign keys from or to these tables, as ``ALTER TABLE … ADD CONSTRAINT`` needs them.
_FOREIGN_KEYS = sa.text(
    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE contype = 'f' AND (conrelid::regclass::text = ANY(:names) "
    "OR confrelid::regclass::text = ANY(:names)) ORDER BY conrelid::regclass::text, conname"
)


async def distribute(conn: AsyncConnection) -> list[str]:
    """Distribute the tables that are not yet (a no-op once done); the names of those done now.

    Citus refuses a foreign key between tables of different kinds while they are being
    distributed one by one (a distributed table referring to a plain one, or the reverse), so
    the foreign keys of the tables distributed here are dropped first and added again after:
    Citus then creates them on every shard."""
    done = set((await conn.execute(_DISTRIBUTED)).scalars())
    present = set((await conn.execute(_TABLES)).scalars())  # an older revision has fewer
    pending = [(n, kind) for n, kind in placement() if n in present and n not in done]
    if not pending:
        return []
    names = [name for name, _ in pending]
    keys = (await conn.execute(_FOREIGN_KEYS, {"names": names})).all()
    for table, constraint, _ in keys:
        await conn.execute(sa.text(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"'))
    for name, kind in pending:
        if kind == "reference":
            statement = sa.text("SELECT create_reference_table(:name)")
        elif name == ANCHOR:
            statement = sa.text("SELECT create_distributed_table(:name, :column)")
        else:
            statement = sa.text(
                "SELECT create_distributed_table(:name, :column, colocate_with => :anchor)"
            )
        await conn.execute(
            statement, {"name": name, "column": DISTRIBUTION_COLUMN, "anchor": ANCHOR}
        )
    for table, constraint, definition in keys:
        await conn.execute(
            sa.text(f'ALTER TABLE {table} ADD CONSTRAINT "{constraint}" {definition}')
        )
    return names


class Placement(NamedTuple):
    tenant_id: int
    shard: int  # the shard of call_logs; its co-located shards of every table go with it
    node: str  # host:port of the worker that holds them
    alone: bool  # the shard holds this tenant only (isolated)


_WHERE = sa.text(
    "SELECT s.shardid, p.nodename || ':' || p.nodeport, s.shardminvalue = s.shardmaxvalue "
    "FROM pg_dist_shard s JOIN pg_dist_placement pl USING (shardid) "
    "JOIN pg_dist_node p USING (groupid) "
    "WHERE s.shardid = get_shard_id_for_distribution_column(:table, CAST(:tenant AS bigint))"
)


async def placement_of(conn: AsyncConnection, tenant_id: int) -> Placement:
    """Where a tenant's rows are (from the coordinator's metadata)."""
    row = (await conn.execute(_WHERE, {"table": ANCHOR, "tenant": tenant_id})).one()
    return Placement(tenant_id=tenant_id, shard=int(row[0]), node=str(row[1]), alone=bool(row[2]))


async def isolate(conn: AsyncConnection, tenant_id: int) -> Placement:
    """Give the tenant shards of its own (``isolate_tenant_to_new_shard`` with CASCADE: every
    co-located table), on the node that held it. ``conn`` is in autocommit mode; the split
    copies the tenant's rows while reads and writes go on (logical replication) and blocks
    writes only for the final switch. A no-op for a tenant already alone."""
    if (await placement_of(conn, tenant_id)).alone:
        return await placement_of(conn, tenant_id)
    await conn.execute(sa.text("SET statement_timeout = 0"))  # copying may take minutes
    try:
        await conn.execute(
            sa.text(
                "SELECT isolate_tenant_to_new_shard(:table, CAST(:tenant AS bigint), 'CASCADE')"
            ),
            {"table": ANCHOR, "tenant": tenant_id},
        )
    finally:
        await conn.execute(sa.text("RESET statement_timeout"))
    return await placement_of(conn, tenant_id)
