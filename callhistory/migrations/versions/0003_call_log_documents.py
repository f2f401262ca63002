"""Call logs keep their rendered wire JSON (``doc``), so pages are served without re-rendering.

Existing calls are rendered here, in batches along the primary key.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from callhistory.calllogs.service import render
from callhistory.db.engine import ALL_TENANTS
from callhistory.db.tables import call_logs

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 5000


def upgrade() -> None:
    op.add_column(
        "call_logs",
        sa.Column("doc", sa.LargeBinary(), nullable=False, server_default=sa.text("''")),
    )
    conn = op.get_bind()
    c = call_logs.c
    key = sa.tuple_(c.tenant_id, c.started_at, c.id)
    update = (
        call_logs.update()
        .where(
            c.tenant_id == sa.bindparam("_tenant"),
            c.started_at == sa.bindparam("_started"),
            c.id == sa.bindparam("_id"),
        )
        .values(doc=sa.bindparam("_doc"))
    )
    last: tuple[int, int, int] | None = None
    while True:
        select = sa.select(call_logs).order_by(c.tenant_id, c.started_at, c.id).limit(_BATCH)
        if last is not None:
            select = select.where(key > sa.tuple_(*(sa.literal(v) for v in last)))
        rows = conn.execute(select, execution_options=ALL_TENANTS).all()
        if not rows:
            break
        conn.execute(
            update,
            [
                {
                    "_tenant": row.tenant_id,
                    "_started": row.started_at,
                    "_id": row.id,
                    "_doc": render(dict(row._mapping)),
                }
                for row in rows
            ],
        )
        last = (rows[-1].tenant_id, rows[-1].started_at, rows[-1].id)
    # The default only served the backfill: every write renders its document. SQLite cannot
    # drop a column's default without rebuilding the table, so there it stays.
    if conn.dialect.name == "postgresql":
        op.alter_column("call_logs", "doc", server_default=None)


def downgrade() -> None:
    op.drop_column("call_logs", "doc")
