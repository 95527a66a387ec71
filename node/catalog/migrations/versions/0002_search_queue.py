"""search queue: datasets waiting to be (re)indexed

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_queue",
        sa.Column("dataset_id", sa.String(length=64), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("dataset_id"),
    )
    op.create_index("ix_search_queue_queued_at", "search_queue", ["queued_at"])
    # Every dataset already in the catalog needs a document.
    op.execute(
        "INSERT INTO search_queue (dataset_id, queued_at, attempts) "
        "SELECT id, CURRENT_TIMESTAMP, 0 FROM datasets"
    )


def downgrade() -> None:
    op.drop_index("ix_search_queue_queued_at", table_name="search_queue")
    op.drop_table("search_queue")
