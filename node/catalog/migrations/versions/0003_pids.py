"""pids: every persistent identifier the node minted, so that none is ever minted twice

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pids",
        sa.Column("pid", sa.String(length=255), nullable=False),
        sa.Column("dataset_id", sa.String(length=64), nullable=False),
        sa.Column("minted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scheme", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False, server_default="active"),
        sa.PrimaryKeyConstraint("pid"),
    )
    op.create_index("ix_pids_dataset_id", "pids", ["dataset_id"])
    # Identifiers records already carry are taken: record them so they are never minted again.
    op.execute(
        "INSERT INTO pids (pid, dataset_id, minted_at, scheme, status) "
        "SELECT identifier, id, CURRENT_TIMESTAMP, "
        "CASE WHEN identifier LIKE 'ark:%' THEN 'ark' ELSE 'datacite' END, "
        "CASE WHEN lifecycle = 'withdrawn' THEN 'withdrawn' ELSE 'active' END "
        "FROM datasets WHERE identifier IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_pids_dataset_id", table_name="pids")
    op.drop_table("pids")
