"""SQLite: a stored message is indexed for search and counted in its room by a trigger

Until now the writer ran three statements a batch besides BEGIN and COMMIT on SQLite: the
INSERT, the search index fed from the rows just written, and the room counts' upsert. Each is
a step of SQLite's with the GIL given away and taken back from a busy event loop, and each has
its own fixed cost. With this trigger the INSERT does all three inside SQLite, so a plain
batch is one statement, which SQLite commits by itself: its whole transaction one step.
Measured on the writer alone (docs/performance.md, issue 16's fourth pass): a commit of 1 row
136 -> 107 µs of CPU, 9 rows over 50 rooms 248 -> 197 µs, 200 rows 1,506 -> 1,392 µs, 1,000
rows the same (5,360 vs 5,300 µs).

Every writer of `messages` is covered, as the delete trigger of 0004 covers every deleter: the
server's writer, and an import (which writes given ids, maybe older than a room's newest: the
newest stays the newest). PostgreSQL is unchanged: its search vector is a generated column and
the writer upserts the room counts once a batch.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# In an upsert's SET every right-hand side reads the row as it was, so last_message_at is
# compared with the last_message_id before this message.
CREATE = """
CREATE TRIGGER messages_after_insert AFTER INSERT ON messages BEGIN
  INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);
  INSERT INTO rooms (room_id, messages, last_message_id, last_message_at)
  VALUES (new.room_id, 1, new.id, new.created_at)
  ON CONFLICT (room_id) DO UPDATE SET
    messages = rooms.messages + 1,
    last_message_at = CASE WHEN excluded.last_message_id > rooms.last_message_id
      THEN excluded.last_message_at ELSE rooms.last_message_at END,
    last_message_id = max(rooms.last_message_id, excluded.last_message_id);
END
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER messages_after_insert")
