"""Statistics kept as calls are written: sums by the tenant's local day, alone and by each
dimension, and by local hour (see rollups.service). A store that already holds calls gets them
built from its calls when ``callhistory migrate`` (or ``serve``) next runs: this revision marks
them pending.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None
# Frozen copy of db.engine.ALL_TENANTS: this looks at every tenant's calls, on purpose.
_ALL_TENANTS = {"callhistory_all_tenants": True}


def _measures() -> list[sa.Column[object]]:
    return [
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("answered", sa.Integer, nullable=False),
        sa.Column("missed", sa.Integer, nullable=False),
        sa.Column("abandoned", sa.Integer, nullable=False),
        sa.Column("talk", sa.BigInteger, nullable=False),
        sa.Column("waits", sa.Integer, nullable=False),
        sa.Column("wait_us", sa.BigInteger, nullable=False),
        sa.Column("wait_hist", sa.Text, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "call_stats_days",
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("dim", sa.String(16), nullable=False),
        sa.Column("value", sa.String(32), nullable=False),
        *_measures(),
        sa.PrimaryKeyConstraint("tenant_id", "day", "dim", "value", name="pk_call_stats_days"),
    )
    op.create_table(
        "call_stats_hours",
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("hour", sa.Integer, nullable=False),
        *_measures(),
        sa.PrimaryKeyConstraint("tenant_id", "hour", name="pk_call_stats_hours"),
    )
    has_calls = (
        op.get_bind()
        .execute(sa.text("SELECT 1 FROM call_logs LIMIT 1"), execution_options=_ALL_TENANTS)
        .first()
    )
    op.execute(
        sa.text("INSERT INTO service_state (name, value) VALUES ('call_stats', :state)").bindparams(
            state="pending" if has_calls else "ready"
        )
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM service_state WHERE name = 'call_stats'"))
    op.drop_table("call_stats_hours")
    op.drop_table("call_stats_days")
