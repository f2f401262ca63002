"""Bring a database to the latest schema with the Alembic migrations (never ``create_all``)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from callhistory.db import citus

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_MIGRATE_LOCK = 0x6D696772  # advisory lock serialising migrations across processes


def alembic_config(url: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Run the migrations in one transaction. On PostgreSQL without the statement timeout that
    bounds requests: building an index over millions of calls takes minutes, not seconds. On
    Citus, the tables not yet distributed are distributed in the same transaction (db.citus)."""

    def run(connection: sa.Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.connect() as conn:
        # SQLite: BEGIN IMMEDIATE, queued behind a running writer. A deferred transaction that
        # reads first cannot wait for the write lock in WAL mode: it fails "database is locked".
        conn = await conn.execution_options(callhistory_write=True)
        async with conn.begin():
            sharded = await citus.installed(conn)
            if conn.dialect.name == "postgresql":
                await conn.execute(sa.text("SET LOCAL statement_timeout = 0"))
                # Processes started at once (several `serve`) migrate one after the other; the
                # later ones then find the schema at head (SQLite's BEGIN IMMEDIATE queues them).
                await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATE_LOCK)))
            if sharded:
                # One connection per worker for the whole transaction: DDL on tables created or
                # distributed earlier in it must see them.
                await conn.execute(
                    sa.text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
                )
            await conn.run_sync(run)
            if sharded:
                await citus.distribute(conn)


async def schema_state(engine: AsyncEngine) -> tuple[str | None, str]:
    """(the database's revision, None for an empty database; the latest revision)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    async with engine.connect() as conn:
        current = await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
    return current, str(head)
