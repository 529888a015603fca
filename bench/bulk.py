"""Loading many messages straight into a migrated SQLite file, fast (bench/ and the tests).

The insert trigger (migrations 0007, 0008) counts each message in its room as it is inserted
(and indexes it for search if it is below the index's mark): right for every writer, but a bulk
load of a million rows does better to drop it, load, then build the index once (FTS5's
`rebuild`, and the mark at the newest id) and count every room with one query, and put the
trigger back as it was."""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

TRIGGER = "messages_after_insert"
# The trigger's line (0008) that indexes a message stored at or below the search index's mark.
INDEX_LINE = (
    "INSERT INTO messages_fts(rowid, text) SELECT new.id, new.text "
    "WHERE new.id <= (SELECT indexed_through FROM messages_fts_state WHERE id = 1);"
)


def insert_trigger_sql(db: sqlite3.Connection) -> str:
    """The insert trigger's CREATE statement, as this database holds it."""
    (sql,) = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (TRIGGER,)
    ).fetchone()
    return str(sql)


@contextmanager
def bulk_load(db: sqlite3.Connection, *, index: bool = True) -> Iterator[None]:
    """Inside, insert into `messages` only; after, `rooms` holds every room's count and newest
    message, and the search index every message (unless `index` is false: left as it was, so
    the server indexes the loaded messages in the background, app/search_index.py)."""
    trigger = insert_trigger_sql(db)
    db.execute(f"DROP TRIGGER {TRIGGER}")
    yield
    if index:
        db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
        db.execute(
            "UPDATE messages_fts_state SET indexed_through = "
            "(SELECT coalesce(max(id), 0) FROM messages) WHERE id = 1"
        )
    db.execute("DELETE FROM rooms")
    # A bare column beside max() is SQLite's value of the row holding the max: the newest.
    db.execute(
        "INSERT INTO rooms (room_id, messages, last_message_id, last_message_at) "
        "SELECT room_id, count(*), max(id), created_at FROM messages GROUP BY room_id"
    )
    db.execute(trigger)
