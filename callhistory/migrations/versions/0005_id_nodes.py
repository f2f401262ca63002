"""Id node leases: each process that mints ids holds one of the 1,024 node numbers, so ids are
unique across processes by construction (see ``db.nodes``).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_NODES = 1024  # 10 bits of the id, as at this revision


def upgrade() -> None:
    table = op.create_table(
        "id_nodes",
        sa.Column("node", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("node", name=op.f("pk_id_nodes")),
    )
    op.bulk_insert(table, [{"node": n, "holder": "", "expires_at": 0} for n in range(_NODES)])


def downgrade() -> None:
    op.drop_table("id_nodes")
