"""SQLite: the search index follows the stored messages in batches, not inside each commit

Until now the insert trigger of 0007 put every message into FTS5 inside the statement that
stores it. FTS5 writes a new segment for every transaction that adds to it, with its structure
record and its `_idx` row, and merges them as they pile up: 5.8 to 6.9 of the 12 pages a
one-row commit wrote, and a third of the writer's CPU (docs/performance.md, issue 16). Added
to in batches of hundreds, the same index costs a few µs a message.

So the index now holds exactly the messages with an id at or below `indexed_through`, the one
row of `messages_fts_state`; the server adds the ones above in the background (app/
search_index.py: a few hundred at a time, or within a fraction of a second) and before every
search, so a search still finds every message stored before it. The triggers keep the rule for
every writer: a message written at or below the mark (an import's older id) is indexed at once,
one above it is left for the next batch; a deleted or edited message leaves the index only if it
was in it. A database upgraded from 0007 has every message indexed: the mark starts at the
newest id.

PostgreSQL is unchanged: its search vector is a generated column of the row itself.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The mark is read by the triggers through a scalar subquery: one row, found by its key.
INDEXED = "(SELECT indexed_through FROM messages_fts_state WHERE id = 1)"

ROOM_COUNT = """
  INSERT INTO rooms (room_id, messages, last_message_id, last_message_at)
  VALUES (new.room_id, 1, new.id, new.created_at)
  ON CONFLICT (room_id) DO UPDATE SET
    messages = rooms.messages + 1,
    last_message_at = CASE WHEN excluded.last_message_id > rooms.last_message_id
      THEN excluded.last_message_at ELSE rooms.last_message_at END,
    last_message_id = max(rooms.last_message_id, excluded.last_message_id);
"""

UP = [
    "CREATE TABLE messages_fts_state "
    "(id INTEGER PRIMARY KEY CHECK (id = 1), indexed_through INTEGER NOT NULL)",
    "INSERT INTO messages_fts_state (id, indexed_through) "
    "SELECT 1, coalesce(max(id), 0) FROM messages",
    "DROP TRIGGER messages_after_insert",
    "CREATE TRIGGER messages_after_insert AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(rowid, text) SELECT new.id, new.text "
    f"WHERE new.id <= {INDEXED};{ROOM_COUNT}END",
    "DROP TRIGGER messages_fts_delete",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages "
    f"WHEN old.id <= {INDEXED} BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "END",
    "DROP TRIGGER messages_fts_update",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, text) SELECT 'delete', old.id, old.text "
    f"WHERE old.id <= {INDEXED}; "
    f"INSERT INTO messages_fts(rowid, text) SELECT new.id, new.text WHERE new.id <= {INDEXED}; "
    "END",
]

# 0007's and 0004's triggers, after the index has caught up with every stored message.
DOWN = [
    f"INSERT INTO messages_fts(rowid, text) SELECT id, text FROM messages WHERE id > {INDEXED}",
    "DROP TRIGGER messages_fts_update",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text); "
    "END",
    "DROP TRIGGER messages_fts_delete",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "END",
    "DROP TRIGGER messages_after_insert",
    "CREATE TRIGGER messages_after_insert AFTER INSERT ON messages BEGIN "
    f"INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);{ROOM_COUNT}END",
    "DROP TABLE messages_fts_state",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in DOWN:
            op.execute(statement)
