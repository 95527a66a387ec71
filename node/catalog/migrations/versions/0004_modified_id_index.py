"""datasets (modified, id): the key OAI-PMH lists and the DCAT catalog page by

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_datasets_modified_id", "datasets", ["modified", "id"])
    # Its prefix serves every query on modified alone; two indexes would leave the planner
    # a choice that needs a sort.
    op.drop_index("ix_datasets_modified", table_name="datasets")


def downgrade() -> None:
    op.create_index("ix_datasets_modified", "datasets", ["modified"])
    op.drop_index("ix_datasets_modified_id", table_name="datasets")
