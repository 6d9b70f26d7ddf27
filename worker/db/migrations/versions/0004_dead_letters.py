"""dead letters

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 13:33:52.839000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_letter_edits",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "dead_letter_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("event_id", sa.String(length=200), nullable=True),
        sa.Column("original", sa.Text(), nullable=False),
        sa.Column("edited", sa.Text(), nullable=False),
        sa.Column("edited_by", sa.String(length=100), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letter_edits")),
    )
    with op.batch_alter_table("dead_letter_edits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dead_letter_edits_dead_letter_id"), ["dead_letter_id"], unique=False
        )

    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("integration_id", sa.String(length=64), nullable=True),
        sa.Column("event_id", sa.String(length=200), nullable=True),
        sa.Column("module", sa.String(length=32), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=True),
        sa.Column("routing_key", sa.String(length=100), nullable=False),
        sa.Column("error_class", sa.String(length=100), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("traceback", sa.Text(), nullable=False),
        sa.Column("attempts", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("first_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.create_index("ix_dead_letters_event", ["event_id"], unique=False)
        batch_op.create_index(
            "ix_dead_letters_filter", ["integration_id", "module", "dead_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index("ix_dead_letters_filter")
        batch_op.drop_index("ix_dead_letters_event")

    op.drop_table("dead_letters")
    with op.batch_alter_table("dead_letter_edits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dead_letter_edits_dead_letter_id"))

    op.drop_table("dead_letter_edits")
