"""sync rules

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 06:01:46.094630
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "project_staff",
        sa.Column(
            "project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("staff_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_project_staff_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_users.id"], name=op.f("fk_project_staff_staff_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("project_id", "staff_id", name=op.f("pk_project_staff")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index("ix_customers_match", ["organization_id", "email"], unique=False)

    with op.batch_alter_table("invoice_users", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f("uq_invoice_users_organization_id_email"), ["organization_id", "email"]
        )

    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("crm_id", sa.String(length=64), nullable=True))

    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.create_index("ix_staff_users_email", ["organization_id", "email"], unique=False)

    with op.batch_alter_table("sync_errors", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "details",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("depends_on", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("version", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_sync_errors_waiting", ["integration_id", "depends_on"], unique=False
        )

    with op.batch_alter_table("timesheets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_timesheets_bug_source", ["integration_id", "bug_source_id"], unique=False
        )
        batch_op.create_index(
            "ix_timesheets_task_source", ["integration_id", "task_source_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("timesheets", schema=None) as batch_op:
        batch_op.drop_index("ix_timesheets_task_source")
        batch_op.drop_index("ix_timesheets_bug_source")

    with op.batch_alter_table("sync_errors", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_errors_waiting")
        batch_op.drop_column("version")
        batch_op.drop_column("depends_on")
        batch_op.drop_column("details")

    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_users_email")

    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("crm_id")

    with op.batch_alter_table("invoice_users", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_invoice_users_organization_id_email"), type_="unique"
        )

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_match")

    op.drop_table("project_staff")
