"""Call logs keep their rendered wire JSON (``doc``), so pages are served without re-rendering.

Existing calls are rendered here, in batches along the primary key, in the wire shape of this
revision: everything the migration needs is written out below, so that it stays what it was when
the live code's shape moves on.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 5000
_ALL_TENANTS = {"callhistory_all_tenants": True}  # for the tests' tenant-scope checker
_COLUMNS = (
    "tenant_id", "id", "caller", "callee", "direction", "call_state", "call_status",
    "started_at", "ended_at", "duration", "extension_id", "user_id", "hotline_id", "contact_id",
    "external_id", "external_session_id", "recording_urls", "call_targets", "note",
    "created_at", "updated_at",
)  # fmt: skip
call_logs = sa.table("call_logs", *(sa.column(name) for name in (*_COLUMNS, "doc")))
_encoder = msgspec.json.Encoder()


def _time(micros: int | None) -> str | None:
    """RFC 3339 UTC with Z; a fraction only when non-zero (milliseconds when exact)."""
    if micros is None:
        return None
    seconds, frac = divmod(micros, 1_000_000)
    text = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac == 0:
        return text + "Z"
    if frac % 1000 == 0:
        return f"{text}.{frac // 1000:03d}Z"
    return f"{text}.{frac:06d}Z"


def _id(value: int | None) -> str:
    return "" if value is None else str(value)


def _document(row: Any) -> bytes:
    """A call log's wire JSON as of this revision (keys in this order)."""
    return _encoder.encode(
        {
            "call_state": row.call_state,
            "call_status": row.call_status,
            "call_targets": msgspec.Raw(row.call_targets),
            "callee": row.callee,
            "caller": row.caller,
            "contact_id": _id(row.contact_id),
            "created_at": _time(row.created_at),
            "direction": row.direction,
            "duration": row.duration,
            "ended_at": _time(row.ended_at),
            "extension_id": _id(row.extension_id),
            "external_id": row.external_id or "",
            "external_session_id": row.external_session_id or "",
            "hotline_id": _id(row.hotline_id),
            "id": str(row.id),
            "note": row.note,
            "recording_urls": msgspec.Raw(row.recording_urls),
            "started_at": _time(row.started_at),
            "updated_at": _time(row.updated_at),
            "user_id": _id(row.user_id),
        }
    )


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
        select = (
            sa.select(*(c[name] for name in _COLUMNS))
            .order_by(c.tenant_id, c.started_at, c.id)
            .limit(_BATCH)
        )
        if last is not None:
            select = select.where(key > sa.tuple_(*(sa.literal(v) for v in last)))
        rows = conn.execute(select, execution_options=_ALL_TENANTS).all()
        if not rows:
            break
        conn.execute(
            update,
            [
                {
                    "_tenant": row.tenant_id,
                    "_started": row.started_at,
                    "_id": row.id,
                    "_doc": _document(row),
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
