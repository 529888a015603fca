"""The SQL of deletion and retention: rows leave `messages`, their rooms' counts follow.

A deleted message's row is deleted, not kept as a tombstone: nothing of it is left to leak
(its id is never reused: `messages` is AUTOINCREMENT on SQLite, a sequence on PostgreSQL, and
the room's `last_message_id` keeps the feed's chain). In the same transaction the room's count
drops (its row goes once no message is left, so `GET /rooms` lists only rooms with messages)
and the search index follows: a trigger on SQLite (migration 0004), the generated column's
index on PostgreSQL. SQLite runs with `secure_delete` (app/db.py), so the row's bytes are
overwritten, and the search index is merged at a clean stop (`Store.close`).
"""

import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models import Message, Room

FTS_OPTIMIZE = "INSERT INTO messages_fts(messages_fts) VALUES ('optimize')"


def delete_sqlite(rooms: Sequence[str], ids: Sequence[int], db: sqlite3.Connection) -> Counter[str]:
    """Delete the messages of `ids` that are in `rooms`; how many went, per room."""
    gone: Counter[str] = Counter()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks, room_marks = ",".join("?" * len(chunk)), ",".join("?" * len(rooms))
        rows = db.execute(
            f"DELETE FROM messages WHERE id IN ({marks}) AND room_id IN ({room_marks}) "
            "RETURNING room_id",
            [*chunk, *rooms],
        ).fetchall()
        gone.update(room for (room,) in rows)
    _uncount_sqlite(db, gone)
    return gone


def delete_expired_sqlite(before: str, most: int, db: sqlite3.Connection) -> Counter[str]:
    """Delete up to `most` of the oldest messages created before `before` (SQLite's stored
    form of a time, app/store.py `_sqlite_time`); how many went, per room."""
    rows = db.execute(
        "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE created_at < ? "
        "ORDER BY created_at LIMIT ?) RETURNING room_id",
        (before, most),
    ).fetchall()
    gone = Counter(room for (room,) in rows)
    _uncount_sqlite(db, gone)
    return gone


def _uncount_sqlite(db: sqlite3.Connection, gone: Counter[str]) -> None:
    rooms = sorted(gone)
    db.executemany(
        "UPDATE rooms SET messages = messages - ? WHERE room_id = ?", [(gone[r], r) for r in rooms]
    )
    db.executemany("DELETE FROM rooms WHERE room_id = ? AND messages <= 0", [(r,) for r in rooms])


def optimize_search_index(db: sqlite3.Connection) -> None:
    """Merge the SQLite search index into one segment: the words of deleted messages, still in
    its older segments until then, are dropped (and their pages overwritten: secure_delete)."""
    db.execute(FTS_OPTIMIZE)


async def delete_postgres(
    conn: AsyncConnection, rooms: Sequence[str], ids: Sequence[int]
) -> Counter[str]:
    """`delete_sqlite` on PostgreSQL, in the caller's transaction."""
    result = await conn.execute(
        delete(Message)
        .where(Message.id.in_(list(ids)), Message.room_id.in_(list(rooms)))
        .returning(Message.room_id)
    )
    gone = Counter(room for (room,) in result)
    for room in sorted(gone):  # sorted, as the writer locks rooms: no deadlock between them
        await conn.execute(
            update(Room).where(Room.room_id == room).values(messages=Room.messages - gone[room])
        )
    if gone:
        await conn.execute(delete(Room).where(Room.room_id.in_(sorted(gone)), Room.messages <= 0))
    return gone


async def expired_postgres(
    conn: AsyncConnection, before: datetime, most: int
) -> list[tuple[int, str]]:
    """The ids and rooms of up to `most` of the oldest messages created before `before`."""
    result = await conn.execute(
        select(Message.id, Message.room_id)
        .where(Message.created_at < before)
        .order_by(Message.created_at)
        .limit(most)
    )
    return [(i, room) for i, room in result]


async def try_lock_postgres(conn: AsyncConnection, name: str) -> bool:
    """A session lock named `name` (one holder across every process), without waiting. Names
    hold a `:`, which no room id does: they never collide with a room's lock."""
    return bool(
        await conn.scalar(text("SELECT pg_try_advisory_lock(hashtextextended(:n, 0))"), {"n": name})
    )


def rooms_of(rows: Iterable[tuple[int, str]]) -> list[str]:
    return sorted({room for _, room in rows})
