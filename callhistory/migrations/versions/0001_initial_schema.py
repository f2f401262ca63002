"""Initial schema: tenants, keys, directory, call logs, and the cursor-signing secret.

Revision ID: 0001
Revises:
Create Date: 2026-11-29 01:14:59.038527
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "call_logs",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("source_id", sa.String(length=255), nullable=False),
        sa.Column("caller", sa.String(length=64), nullable=False),
        sa.Column("callee", sa.String(length=64), nullable=False),
        sa.Column("caller_norm", sa.String(length=64), nullable=False),
        sa.Column("callee_norm", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("call_state", sa.String(length=16), nullable=False),
        sa.Column("call_status", sa.String(length=1), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("extension_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("hotline_id", sa.BigInteger(), nullable=True),
        sa.Column("contact_id", sa.BigInteger(), nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("external_session_id", sa.String(length=255), nullable=True),
        sa.Column("recording_urls", sa.Text(), nullable=False),
        sa.Column("call_targets", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "started_at", "id", name=op.f("pk_call_logs")),
        postgresql_partition_by="RANGE (started_at)",
    )
    # Unique on SQLite; PostgreSQL cannot enforce it across partitions (ingest locks per tenant).
    op.create_index(
        "ix_call_logs_source" if postgres else "uq_call_logs_source",
        "call_logs",
        ["tenant_id", "source_id"],
        unique=not postgres,
    )
    op.create_index(
        "ix_call_logs_started_at_duration",
        "call_logs",
        ["tenant_id", "started_at", "id", "duration"],
    )
    for sort in ("created_at", "updated_at", "duration"):
        op.create_index(f"ix_call_logs_{sort}", "call_logs", ["tenant_id", sort, "id"])
    for column in ("direction", "call_state", "caller_norm", "callee_norm"):
        op.create_index(
            f"ix_call_logs_{column}_started_at",
            "call_logs",
            ["tenant_id", column, "started_at", "id"],
        )
    for column in ("extension_id", "hotline_id", "user_id", "external_id", "external_session_id"):
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            f"ix_call_logs_{column}_started_at",
            "call_logs",
            ["tenant_id", column, "started_at", "id"],
            sqlite_where=where,
            postgresql_where=where,
        )

    op.create_table(
        "service_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=512), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_state")),
    )
    # The key that signs paging cursors, kept in the database so every process shares it.
    op.bulk_insert(
        sa.table("service_state", sa.column("name"), sa.column("value")),
        [{"name": "cursor_secret", "value": secrets.token_hex(32)}],
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("domain", name=op.f("uq_tenants_domain")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_api_keys_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "departments",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_departments_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_departments")),
    )
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_departments_tenant_id_created_at_id"),
            ["tenant_id", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "hotlines",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hotline", sa.String(length=32), nullable=False),
        sa.Column("hotline_norm", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column("is_free_charge", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=1), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_hotlines_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_hotlines")),
    )
    with op.batch_alter_table("hotlines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_hotlines_tenant_id_created_at_id"),
            ["tenant_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_hotlines_tenant_id_hotline_norm"),
            ["tenant_id", "hotline_norm"],
            unique=False,
        )

    op.create_table(
        "users",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("department_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "department_id"],
            ["departments.tenant_id", "departments.id"],
            name=op.f("fk_users_tenant_id_department_id_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_users_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_users")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_users_tenant_id_created_at_id"),
            ["tenant_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_users_tenant_id_department_id_id"),
            ["tenant_id", "department_id", "id"],
            unique=False,
        )

    op.create_table(
        "extensions",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("extension_number", sa.String(length=32), nullable=False),
        sa.Column("extension_password", sa.String(length=64), nullable=False),
        sa.Column("hotline_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("subscription_id", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=1), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "hotline_id"],
            ["hotlines.tenant_id", "hotlines.id"],
            name=op.f("fk_extensions_tenant_id_hotline_id_hotlines"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.id"],
            name=op.f("fk_extensions_tenant_id_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_extensions_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_extensions")),
        sa.UniqueConstraint(
            "tenant_id", "extension_number", name=op.f("uq_extensions_tenant_id_extension_number")
        ),
    )
    with op.batch_alter_table("extensions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_extensions_tenant_id_created_at_id"),
            ["tenant_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_extensions_tenant_id_user_id"), ["tenant_id", "user_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("extensions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_extensions_tenant_id_user_id"))
        batch_op.drop_index(batch_op.f("ix_extensions_tenant_id_created_at_id"))

    op.drop_table("extensions")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_tenant_id_department_id_id"))
        batch_op.drop_index(batch_op.f("ix_users_tenant_id_created_at_id"))

    op.drop_table("users")
    with op.batch_alter_table("hotlines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hotlines_tenant_id_hotline_norm"))
        batch_op.drop_index(batch_op.f("ix_hotlines_tenant_id_created_at_id"))

    op.drop_table("hotlines")
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_departments_tenant_id_created_at_id"))

    op.drop_table("departments")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_tenant_id"))

    op.drop_table("api_keys")
    op.drop_table("tenants")
    op.drop_table("service_state")
    op.drop_table("call_logs")
