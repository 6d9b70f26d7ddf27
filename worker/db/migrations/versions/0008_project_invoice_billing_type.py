"""project billing method set on the invoicing side

Zoho Projects' V3 API shows no billing method for a project, so the invoicing side
sets it, as it sets rates.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("invoice_billing_type", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("invoice_billing_type")
