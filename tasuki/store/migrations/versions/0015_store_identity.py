"""store identity: a random id of this store, fixed when it is created

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 01:20:00

Webhook intake remembers delivery ids in Redis under this id (:mod:`tasuki.deliveries`): a
store made anew (``make clean``, a restore) next to a Redis that still remembers another
store's deliveries takes them as new, as that store never had them.
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "store_identity",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_identity")),
    )
    op.bulk_insert(table, [{"id": uuid.uuid4().hex}])


def downgrade() -> None:
    op.drop_table("store_identity")
