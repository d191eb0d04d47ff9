"""kpi row keys: ledger and rejection record ids up to 255 characters

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-28 19:20:00

KPI rows are written by their external id (``2026-11|mk_mqls|team:IS East``), which is longer
than a CRM record id; 255 is Salesforce's longest External ID text field.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("write_ledger", "write_rejections")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "record_id", existing_type=sa.String(length=64), type_=sa.String(length=255)
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "record_id", existing_type=sa.String(length=255), type_=sa.String(length=64)
            )
