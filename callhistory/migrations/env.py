"""Alembic environment. Runs on a connection handed in by ``callhistory.db.migrate`` (the
normal path), or opens its own async engine when run through the ``alembic`` command."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from callhistory.db.engine import async_url
from callhistory.db.tables import metadata

config = context.config


def _include(obj: object, name: str | None, kind: str, reflected: bool, compare_to: object) -> bool:
    """Autogenerate ignores the monthly partitions the service creates at run time."""
    return not (kind == "table" and (name or "").startswith("call_logs_p"))


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=_include,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_own_engine() -> None:
    engine = create_async_engine(async_url(config.get_main_option("sqlalchemy.url") or ""))
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_own_engine())
