"""verdicts: the fingerprint of the rule set that judged each one; store facts

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 21:00:00

``verdicts.fingerprint`` is :func:`tasuki.runtime.rules_fingerprint` of the rule set that last
judged the handoff (rules files' content, business calendar, boundaries, related records), kept
up to date when a re-judgment under changed rules gives the same verdict, so ``rules explain``
can say whether the files changed since. ``rules_digest`` stays the digest of the rules files
at the verdict's last change. Verdicts stored before this revision have an empty fingerprint:
any rule set counts as changed for them.

``store_facts`` holds single facts about this installation by key, such as
``history_before``: handoffs before it are history, written to the CRM only when asked
(``tasuki sync --write-history``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "store_facts",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_store_facts")),
    )
    with op.batch_alter_table("verdicts") as batch:
        batch.add_column(
            sa.Column("fingerprint", sa.String(length=64), nullable=False, server_default="")
        )


def downgrade() -> None:
    op.drop_table("store_facts")
    with op.batch_alter_table("verdicts") as batch:
        batch.drop_column("fingerprint")
