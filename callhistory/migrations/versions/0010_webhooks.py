"""Webhooks: tenants' endpoints, the outbox of call events, deliveries and their attempts.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None
_PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.String(200), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("disabled_reason", sa.String(500), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text, nullable=True),
        sa.Column("previous_until", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_webhook_endpoints"),
    )
    op.create_table(
        "webhook_events",
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("call_id", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", sa.BigInteger, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_webhook_events"),
    )
    op.create_index(
        "ix_webhook_events_tenant_id_call_id", "webhook_events", ["tenant_id", "call_id"]
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("endpoint_id", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("call_id", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", sa.BigInteger, nullable=False),
        sa.Column("lease_until", sa.BigInteger, nullable=True),
        sa.Column("retry_from", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
        sa.Column("last_code", sa.Integer, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_webhook_deliveries"),
    )
    op.create_index(
        "ix_webhook_deliveries_tenant_id_endpoint_id_created_at",
        "webhook_deliveries",
        ["tenant_id", "endpoint_id", "created_at"],
    )
    op.create_index(
        "ix_webhook_deliveries_tenant_id_event_id", "webhook_deliveries", ["tenant_id", "event_id"]
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["tenant_id", "endpoint_id", "next_at"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )
    leased = sa.text("lease_until IS NOT NULL")
    op.create_index(
        "ix_webhook_deliveries_leased",
        "webhook_deliveries",
        ["tenant_id", "endpoint_id", "lease_until"],
        sqlite_where=leased,
        postgresql_where=leased,
    )
    op.create_index(
        "ix_webhook_deliveries_call",
        "webhook_deliveries",
        ["tenant_id", "endpoint_id", "call_id", "seq"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("delivery_id", sa.BigInteger, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("code", sa.Integer, nullable=True),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("error", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "delivery_id", "attempt", name="pk_webhook_attempts"),
    )


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_events")
    op.drop_table("webhook_endpoints")
