"""token names and last use, status-page sessions, room for sealed webhook secrets

Webhook signing secrets are now stored encrypted (a Fernet token is longer than the
secret). Existing secrets are left as they are: a migration has no credential key
(it runs before the key is known to be right), and a plaintext secret stays readable
until `billsync keys rotate`, or the integration's next secret rotation, seals it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("name", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("integration_secrets") as batch:
        batch.alter_column(
            "secret",
            existing_type=sa.String(length=128),
            type_=sa.String(length=255),
            existing_nullable=False,
        )

    op.create_table(
        "status_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("token_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["token_id"], ["api_tokens.id"], name=op.f("fk_status_sessions_token_id_api_tokens")
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_status_sessions")),
    )
    with op.batch_alter_table("status_sessions") as batch:
        batch.create_index(batch.f("ix_status_sessions_token_id"), ["token_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("status_sessions") as batch:
        batch.drop_index(batch.f("ix_status_sessions_token_id"))
    op.drop_table("status_sessions")
    # Sealed secrets do not fit 128 characters: downgrading needs them unsealed first.
    with op.batch_alter_table("integration_secrets") as batch:
        batch.alter_column(
            "secret",
            existing_type=sa.String(length=255),
            type_=sa.String(length=128),
            existing_nullable=False,
        )
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("name")
