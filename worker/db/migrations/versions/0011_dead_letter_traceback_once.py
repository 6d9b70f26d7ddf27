"""a dead letter's traceback is kept once, in its column

The archiver stored the worker's error headers whole, so the traceback (up to 8,000
characters) was kept twice: in `dead_letters.traceback` and again under
`x-billsync-traceback` in `dead_letters.headers`, about half of every row. It is
taken out of the stored headers here; a row whose column is empty (none should be)
gets it from the header first, so no traceback is lost.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HEADER = "x-billsync-traceback"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"UPDATE dead_letters SET "
            f"traceback = CASE WHEN traceback = '' "
            f"THEN coalesce(headers ->> '{HEADER}', '') ELSE traceback END, "
            f"headers = headers - '{HEADER}' "
            f"WHERE headers ? '{HEADER}'"
        )
        return
    path = f'$."{HEADER}"'
    op.execute(
        f"UPDATE dead_letters SET "
        f"traceback = CASE WHEN traceback = '' "
        f"THEN coalesce(CAST(json_extract(headers, '{path}') AS TEXT), '') ELSE traceback END, "
        f"headers = json_remove(headers, '{path}') "
        f"WHERE json_type(headers, '{path}') IS NOT NULL"
    )


def downgrade() -> None:
    # Nothing to put back: revision 0010's code shows the traceback from its column and
    # leaves the header out of what it shows anyway.
    pass
