"""Call legs: the per-channel CDRs a call log is assembled from.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_legs",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("call_source_id", sa.String(length=255), nullable=False),
        sa.Column("leg_id", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "call_source_id", "leg_id", name=op.f("pk_call_legs")),
    )


def downgrade() -> None:
    op.drop_table("call_legs")
