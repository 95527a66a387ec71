"""federation: peers added by the CLI, each peer's harvest state, the peer record → dataset
mapping, and the nodes of the federation learnt from descriptors

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "peers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("schedule", sa.String(length=64), nullable=False),
        sa.Column("metadata_prefix", sa.String(length=64), nullable=False),
        sa.Column("set_spec", sa.Text(), nullable=False),
        sa.Column("token_env", sa.String(length=64), nullable=False),
        sa.Column("added_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "peer_state",
        sa.Column("peer_id", sa.String(length=64), nullable=False),
        sa.Column("watermark", UTC_DATETIME, nullable=True),
        sa.Column("last_started", UTC_DATETIME, nullable=True),
        sa.Column("last_success", UTC_DATETIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", UTC_DATETIME, nullable=True),
        sa.Column("last_counts", JSON, nullable=False),
        sa.PrimaryKeyConstraint("peer_id"),
    )
    op.create_table(
        "federated_records",
        sa.Column("peer_id", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=512), nullable=False),
        sa.Column("dataset_id", sa.String(length=64), nullable=False),
        sa.Column("datestamp", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("peer_id", "remote_id"),
    )
    op.create_index("ix_federated_records_dataset_id", "federated_records", ["dataset_id"])
    op.create_table(
        "federation_nodes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("parents", JSON, nullable=False),
        sa.Column("ror", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("learnt_from", sa.String(length=64), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("federation_nodes")
    op.drop_index("ix_federated_records_dataset_id", table_name="federated_records")
    op.drop_table("federated_records")
    op.drop_table("peer_state")
    op.drop_table("peers")
