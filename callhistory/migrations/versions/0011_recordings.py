"""Recordings: audio files uploaded for calls, kept in the recordings store.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None
_GONE = sa.text("gone_at IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("call_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("source", sa.String(2048), nullable=False),
        sa.Column("store", sa.String(1000), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("gone_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_recordings"),
    )
    op.create_index(
        "ix_recordings_call", "recordings", ["tenant_id", "call_id", "name"], unique=True
    )
    op.create_index(
        "ix_recordings_gone",
        "recordings",
        ["tenant_id", "gone_at"],
        sqlite_where=_GONE,
        postgresql_where=_GONE,
    )


def downgrade() -> None:
    op.drop_index("ix_recordings_gone", table_name="recordings")
    op.drop_index("ix_recordings_call", table_name="recordings")
    op.drop_table("recordings")
