"""Indexes of long calls (tiers of at least 300 s and 1,800 s), so that a filter for long calls
walks only calls of its tier (see ``db.tables.LONG_CALL_TIERS``).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TIERS = (300, 1800)  # as they were at this revision


def upgrade() -> None:
    for tier in _TIERS:
        long_calls = sa.text(f"duration + 0 >= {tier}")
        op.create_index(
            f"ix_call_logs_over_{tier}s",
            "call_logs",
            ["tenant_id", "started_at", "id", "duration"],
            sqlite_where=long_calls,
            postgresql_where=long_calls,
        )


def downgrade() -> None:
    for tier in _TIERS:
        op.drop_index(f"ix_call_logs_over_{tier}s", table_name="call_logs")
