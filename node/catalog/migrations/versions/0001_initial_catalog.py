"""initial catalog

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "datasets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("folder", sa.Text(), nullable=True),
        sa.Column("identifier", sa.String(length=255), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("lifecycle", sa.String(length=16), nullable=False),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("data_access", sa.String(length=16), nullable=False),
        sa.Column("origin_node", sa.String(length=64), nullable=False),
        sa.Column("modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dirty", sa.Boolean(), nullable=False),
        sa.Column(
            "doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("identifier"),
    )
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_datasets_dirty"), ["dirty"], unique=False)
        batch_op.create_index(batch_op.f("ix_datasets_lifecycle"), ["lifecycle"], unique=False)
        batch_op.create_index(batch_op.f("ix_datasets_modified"), ["modified"], unique=False)
        batch_op.create_index(batch_op.f("ix_datasets_origin_node"), ["origin_node"], unique=False)
        batch_op.create_index(batch_op.f("ix_datasets_source"), ["source"], unique=False)
        batch_op.create_index(batch_op.f("ix_datasets_visibility"), ["visibility"], unique=False)

    op.create_table(
        "files",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("dir", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("fileset", sa.Text(), nullable=True),
        sa.Column("dataset_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("source", "dir", "name"),
    )
    op.create_table(
        "harvest_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "counts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("harvest_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_harvest_runs_source"), ["source"], unique=False)

    op.create_table(
        "source_locks",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )
    op.create_table(
        "harvest_errors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["harvest_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("harvest_errors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_harvest_errors_run_id"), ["run_id"], unique=False)

    op.create_table(
        "images",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("dataset_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("series", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("thumb_state", sa.String(length=16), nullable=False),
        sa.Column(
            "doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_images_dataset_id"), ["dataset_id"], unique=False)
        batch_op.create_index("ix_images_source_path", ["source", "path"], unique=False)
        batch_op.create_index(batch_op.f("ix_images_thumb_state"), ["thumb_state"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_images_thumb_state"))
        batch_op.drop_index("ix_images_source_path")
        batch_op.drop_index(batch_op.f("ix_images_dataset_id"))

    op.drop_table("images")
    with op.batch_alter_table("harvest_errors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_harvest_errors_run_id"))

    op.drop_table("harvest_errors")
    op.drop_table("source_locks")
    with op.batch_alter_table("harvest_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_harvest_runs_source"))

    op.drop_table("harvest_runs")
    op.drop_table("files")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_datasets_visibility"))
        batch_op.drop_index(batch_op.f("ix_datasets_source"))
        batch_op.drop_index(batch_op.f("ix_datasets_origin_node"))
        batch_op.drop_index(batch_op.f("ix_datasets_modified"))
        batch_op.drop_index(batch_op.f("ix_datasets_lifecycle"))
        batch_op.drop_index(batch_op.f("ix_datasets_dirty"))

    op.drop_table("datasets")
