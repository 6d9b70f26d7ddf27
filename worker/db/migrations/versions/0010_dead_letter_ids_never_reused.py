"""dead-letter ids are never reused (SQLite AUTOINCREMENT)

SQLite hands out max(rowid) + 1, so after the newest dead letter was replayed or
deleted the next one took its id: `billsync dlq show 42` could show another event
than the one an operator noted, a list cursor could skip it, and the edit audit
(`dead_letter_edits.dead_letter_id`) pointed at an unrelated letter. AUTOINCREMENT
keeps the highest id ever given out in `sqlite_sequence`; it is seeded here past
every id the audit names, the highest ids deleted before this migration being
unknowable. PostgreSQL's sequences never go back: nothing to do there.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # SQLite cannot add AUTOINCREMENT to a table: batch mode copies it into a new one.
    with op.batch_alter_table(
        "dead_letters", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass
    op.execute(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'dead_letters', 0 "
        "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'dead_letters')"
    )
    op.execute(
        "UPDATE sqlite_sequence SET seq = max(seq, "
        "(SELECT coalesce(max(dead_letter_id), 0) FROM dead_letter_edits)) "
        "WHERE name = 'dead_letters'"
    )


def downgrade() -> None:
    # Kept: AUTOINCREMENT changes no column, and revision 0009's code runs on it as is
    # (and a rebuild without it would let ids be reused again).
    pass
