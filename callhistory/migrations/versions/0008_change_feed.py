"""The change feed and erasure: each call log's change sequence number, the tenants' counters,
erased calls, and an index for GetCallLog by id.

Calls stored before this revision keep a NULL sequence number (rewriting every row would take
minutes on a large store); the feed sends them first, by id (``ix_call_logs_unsequenced``).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("call_logs", sa.Column("change_seq", sa.BigInteger, nullable=True))
    op.create_index("ix_call_logs_id", "call_logs", ["tenant_id", "id"])
    sequenced = sa.text("change_seq IS NOT NULL")
    op.create_index(
        "ix_call_logs_change_seq",
        "call_logs",
        ["tenant_id", "change_seq"],
        sqlite_where=sequenced,
        postgresql_where=sequenced,
    )
    unsequenced = sa.text("change_seq IS NULL")
    op.create_index(
        "ix_call_logs_unsequenced",
        "call_logs",
        ["tenant_id", "id"],
        sqlite_where=unsequenced,
        postgresql_where=unsequenced,
    )
    op.create_table(
        "change_counters",
        sa.Column("tenant_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_change_counters"),
    )
    op.create_table(
        "call_log_erasures",
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("erased_at", sa.BigInteger, nullable=False),
        sa.Column("change_seq", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_call_log_erasures"),
        sa.UniqueConstraint(
            "tenant_id", "source_id", name="uq_call_log_erasures_tenant_id_source_id"
        ),
    )
    op.create_index(
        "ix_call_log_erasures_tenant_id_change_seq",
        "call_log_erasures",
        ["tenant_id", "change_seq"],
    )


def downgrade() -> None:
    op.drop_table("call_log_erasures")
    op.drop_table("change_counters")
    op.drop_index("ix_call_logs_unsequenced", table_name="call_logs")
    op.drop_index("ix_call_logs_change_seq", table_name="call_logs")
    op.drop_index("ix_call_logs_id", table_name="call_logs")
    with op.batch_alter_table("call_logs") as batch:
        batch.drop_column("change_seq")
