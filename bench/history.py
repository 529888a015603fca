"""A database full of history, fast: migrated by Alembic, then one bulk SQLite insert.

Going through the socket would take minutes for a million rows and measure nothing new; the rows
written here look exactly like the writer's (same columns, same timestamp text, `rooms` kept).
"""

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from alembic import command

from app.schema import alembic_config
from bench.bulk import bulk_load

# SQLAlchemy's text form of a DATETIME on SQLite, which is what the writer stores.
_STAMP = "%Y-%m-%d %H:%M:%S.%f"


def room_ids(rooms: int) -> list[str]:
    return [f"history-{i}" for i in range(rooms)]


def _history_text(i: int) -> str:
    return f"message {i} of the history benchmark"


def seed(
    path: Path, rows: int, rooms: int, *, text: Callable[[int], str] = _history_text
) -> list[str]:
    """A migrated database at `path` with `rows` messages spread round-robin over `rooms`,
    and their search index built as the writer would have kept it."""
    path.unlink(missing_ok=True)
    config = alembic_config()  # the project's migrations, without touching our logging
    config.set_main_option("sqlalchemy.url", f"sqlite+aiosqlite:///{path}")
    command.upgrade(config, "head")
    names = room_ids(rooms)
    start = datetime(2026, 1, 1)
    with sqlite3.connect(path) as db, bulk_load(db):
        db.execute("PRAGMA synchronous=OFF")  # a bulk load: a crash just means seeding again
        db.executemany(
            "INSERT INTO messages (id, room_id, text, created_at) VALUES (?, ?, ?, ?)",
            (
                (
                    i,
                    names[i % rooms],
                    text(i),
                    (start + timedelta(milliseconds=i)).strftime(_STAMP),
                )
                for i in range(1, rows + 1)
            ),
        )
    return names
