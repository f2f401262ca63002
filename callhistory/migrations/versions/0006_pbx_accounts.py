"""PBX accounts (a hashed, rotatable credential per PBX, bound to the tenants it serves), the
operator's routing numbers, and key expiry and last use.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pbx_accounts",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("previous_hash", sa.String(length=64), nullable=True),
        sa.Column("previous_until", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pbx_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_pbx_accounts_name")),
    )
    op.create_table(
        "pbx_tenants",
        sa.Column("pbx_id", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pbx_id"], ["pbx_accounts.id"], name=op.f("fk_pbx_tenants_pbx_id_pbx_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_pbx_tenants_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("pbx_id", "tenant_id", name=op.f("pk_pbx_tenants")),
    )
    op.create_table(
        "routing_numbers",
        sa.Column("number_norm", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_routing_numbers_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("number_norm", name=op.f("pk_routing_numbers")),
    )
    op.create_index(
        op.f("ix_routing_numbers_tenant_id"), "routing_numbers", ["tenant_id"], unique=False
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("expires_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
    op.drop_index(op.f("ix_routing_numbers_tenant_id"), table_name="routing_numbers")
    op.drop_table("routing_numbers")
    op.drop_table("pbx_tenants")
    op.drop_table("pbx_accounts")
