"""Room for sealed SIP passwords, and the database's own data key (used to seal them when the
operator sets no CALLHISTORY_DATA_KEY). Passwords stored before are sealed when the service
starts (``directory.service.reseal_passwords``).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import base64
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("extensions") as batch:
        batch.alter_column(
            "extension_password",
            existing_type=sa.String(length=64),
            type_=sa.String(length=255),
            existing_nullable=False,
        )
    state = sa.table("service_state", sa.column("name"), sa.column("value"))
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    op.bulk_insert(state, [{"name": "data_key", "value": key}])


def downgrade() -> None:
    op.execute("DELETE FROM service_state WHERE name = 'data_key'")
    with op.batch_alter_table("extensions") as batch:
        batch.alter_column(
            "extension_password",
            existing_type=sa.String(length=255),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
