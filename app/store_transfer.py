"""The SQL of export and import (with the other store*.py, the only code that runs SQL).

Export reads the messages in id order in ONE query, so one snapshot, streamed in batches: its
memory does not grow with the table. SQLite through a plain `sqlite3` cursor (SQLAlchemy's
per-row processing would be most of the time; a reader never blocks the server's writer under
WAL), PostgreSQL through a server-side cursor.

Import writes each batch in one transaction: the rows whose id is not stored yet, the search
index for exactly those rows (SQLite; PostgreSQL's is a generated column), the room counts
(`rooms`) raised by exactly those rows, and on PostgreSQL the id sequence moved past them. A
batch whose rows are all stored already changes nothing, so importing a file again is a no-op,
and an import cut short leaves whole batches, counted and indexed.
"""

import os
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from sqlalchemy import ColumnElement, case, func, insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import sqlite_on_connect
from app.messages import iso_utc
from app.models import Message, Room
from app.schema import prepare_schema
from app.search_index import WHOLE_BACKLOG, catch_up
from app.sqlite_thread import SqliteThread, database_file
from app.store import SQLITE_MAX_VARIABLES, RoomCount, _sqlite_time
from app.transfer_format import ExportRow, ImportedMessage

EXPORT_BATCH = 2000
_CONTENT = ("room_id", "text", "created_at", "author")
# A stored message's content, as ImportedMessage.content() gives it.
Content = tuple[str, str, datetime, str | None]


class NotExportable(RuntimeError):
    """The database cannot be read for an export (no such SQLite file, schema not at head)."""


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """Which messages to export: in `rooms` (every room when empty), created at or after
    `since` and before `until` (UTC-aware, either may be None)."""

    rooms: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


async def check_exportable(engine: AsyncEngine) -> None:
    """NotExportable unless the database exists with its schema at head. Never creates a
    file or changes a schema: export only reads."""
    if _is_sqlite(engine) and not _exists(_sqlite_file(engine)):
        raise NotExportable(f"no SQLite database at {_sqlite_file(engine)}")
    try:
        await prepare_schema(engine, auto_migrate=False)
    except RuntimeError as exc:  # SchemaNotReady
        raise NotExportable(str(exc)) from None


async def count_messages(engine: AsyncEngine, which: ExportFilter) -> int:
    """How many messages `export_batches` would give (for a progress line)."""
    if _is_sqlite(engine):
        where, params = _sqlite_where(which)
        with _sqlite_reader(engine) as db:
            return int(db.execute(f"SELECT count(*) FROM messages{where}", params).fetchone()[0])
    query = select(func.count()).select_from(Message).where(*_conditions(which))
    async with engine.connect() as conn:
        return int(await conn.scalar(query) or 0)


async def export_batches(
    engine: AsyncEngine, which: ExportFilter, size: int = EXPORT_BATCH
) -> AsyncIterator[list[ExportRow]]:
    """The messages of `which`, oldest first by id, in batches of at most `size`; one
    snapshot (one query), memory bounded by one batch."""
    if _is_sqlite(engine):
        for batch in _sqlite_batches(engine, which, size):
            yield batch
        return
    query = (
        select(Message.id, Message.room_id, Message.text, Message.created_at, Message.author)
        .where(*_conditions(which))
        .order_by(Message.id)
        .execution_options(yield_per=size)
    )
    async with engine.connect() as conn:
        result = await conn.stream(query)
        async for rows in result.partitions(size):
            yield [(i, room, body, iso_utc(at), author) for i, room, body, at, author in rows]


def _sqlite_batches(
    engine: AsyncEngine, which: ExportFilter, size: int
) -> Iterator[list[ExportRow]]:
    where, params = _sqlite_where(which)
    with _sqlite_reader(engine) as db:
        # One statement, stepped batch by batch: its read transaction is the snapshot.
        cursor = db.execute(
            f"SELECT id, room_id, text, created_at, author FROM messages{where} ORDER BY id",
            params,
        )
        while rows := cursor.fetchmany(size):
            yield [
                (i, room, body, at[:10] + "T" + at[11:] + "Z" if len(at) == 26 else _iso(at), a)
                for i, room, body, at, a in rows
            ]


def _from_stamp(stamp: str) -> str:
    """An iso_utc time as SQLite stores it (`_sqlite_time`'s "YYYY-MM-DD HH:MM:SS.ffffff",
    UTC): the export's fast path backwards."""
    return stamp[:10] + " " + stamp[11:26]


def _iso(stored: str) -> str:
    """iso_utc of a SQLite timestamp that is not in the writer's exact text (the fast path
    above rewrites "YYYY-MM-DD HH:MM:SS.ffffff", which is UTC, into iso_utc's form)."""
    moment = datetime.fromisoformat(stored)
    return iso_utc(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _sqlite_where(which: ExportFilter) -> tuple[str, list[str]]:
    clauses: list[str] = []
    params: list[str] = []
    if which.rooms:
        clauses.append(f"room_id IN ({','.join('?' * len(which.rooms))})")
        params += which.rooms
    # Stored as UTC text that sorts as time does (app/db.py UTCDateTime).
    if which.since is not None:
        clauses.append("created_at >= ?")
        params.append(_sqlite_time(which.since))
    if which.until is not None:
        clauses.append("created_at < ?")
        params.append(_sqlite_time(which.until))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _conditions(which: ExportFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if which.rooms:
        conditions.append(Message.room_id.in_(which.rooms))
    if which.since is not None:
        conditions.append(Message.created_at >= which.since)
    if which.until is not None:
        conditions.append(Message.created_at < which.until)
    return conditions


class _sqlite_reader:
    """A plain connection for reading, closed on exit (never the writer's pragmas: it writes
    nothing, and must not turn a file into WAL or create one)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._db = sqlite3.connect(_sqlite_file(engine), isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=5000")

    def __enter__(self) -> sqlite3.Connection:
        return self._db

    def __exit__(self, *_: object) -> None:
        self._db.close()


# Import.


@dataclass(slots=True)
class Outcome:
    """What a batch of lines became: stored now, stored before (same content), and the lines
    skipped as conflicts (line number, reason)."""

    imported: int = 0
    present: int = 0
    conflicts: list[tuple[int, str]] = field(default_factory=list)


class Importer(Protocol):
    async def write(self, batch: Sequence[ImportedMessage]) -> Outcome:
        """Store the batch's messages not stored yet, in one transaction (see the module)."""
        ...

    async def close(self) -> None: ...


def open_importer(engine: AsyncEngine) -> Importer:
    """The importer of the engine's database (migrated to head by the caller)."""
    if _is_sqlite(engine):
        return _SqliteImporter(engine)
    return _PostgresImporter(engine)


def _sort(
    batch: Sequence[ImportedMessage], stored: dict[int, Content]
) -> tuple[list[ImportedMessage], Outcome]:
    """The batch's messages to insert (one per id not stored), and what became of the rest:
    an id stored (or earlier in the batch) with the same content is already present, with
    other content a conflict."""
    new: list[ImportedMessage] = []
    outcome = Outcome()
    earlier: dict[int, ImportedMessage] = {}
    for m in batch:
        known = stored.get(m.id)
        first = earlier.setdefault(m.id, m)
        if known is None and first is m:
            new.append(m)
        elif (known or first.content()) == m.content():
            outcome.present += 1
        elif known is not None:
            differs = ", ".join(_differences(known, m.content()))
            outcome.conflicts.append((m.line, f"id {m.id} is stored with another {differs}"))
        else:
            differs = ", ".join(_differences(first.content(), m.content()))
            outcome.conflicts.append(
                (m.line, f"id {m.id} is on line {first.line} with another {differs}")
            )
    outcome.imported = len(new)
    return new, outcome


def _differences(a: Content, b: Content) -> Iterator[str]:
    return (name for name, x, y in zip(_CONTENT, a, b, strict=True) if x != y)


def _room_counts(new: Sequence[ImportedMessage]) -> list[RoomCount]:
    """What the new rows add to each room: their number, and the newest of them (by id)."""
    rooms: dict[str, RoomCount] = {}
    for m in new:
        room = rooms.get(m.room_id)
        if room is None:
            rooms[m.room_id] = RoomCount(m.room_id, 1, m.id, m.created_at)
            continue
        room.messages += 1
        if m.id > room.last_id:
            room.last_id, room.last_at = m.id, m.created_at
    return list(rooms.values())


class _SqliteImporter:
    """Each batch in one call to a thread of its own, on a connection opened with the
    server's own pragmas (app/sqlite_thread.py, as the writer does)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._thread = SqliteThread(_sqlite_file(engine), sqlite_on_connect(engine))

    async def write(self, batch: Sequence[ImportedMessage]) -> Outcome:
        return await self._thread.transaction(partial(_write_sqlite, batch))

    async def close(self) -> None:
        await self._thread.close()


def _write_sqlite(batch: Sequence[ImportedMessage], db: sqlite3.Connection) -> Outcome:
    new, outcome = _sort(batch, _stored_sqlite(db, sorted({m.id for m in batch})))
    if not new:
        return outcome
    # Many rows a statement (as the writer does): a statement run per row costs more than the
    # row. AUTOINCREMENT's counter (sqlite_sequence) follows explicit ids by itself: the
    # server's next message gets a higher id than any imported. The insert trigger (migration
    # 0007) counts each row in its room, and indexes it for search if its id is at or below
    # the search index's mark (0008); the rest are indexed after the batch, in its transaction.
    per_statement = SQLITE_MAX_VARIABLES // 5
    for start in range(0, len(new), per_statement):
        chunk = new[start : start + per_statement]
        params: list[object] = []
        for m in chunk:
            params += (m.id, m.room_id, m.text, _from_stamp(m.stamp), m.author)
        db.execute(
            "INSERT INTO messages (id, room_id, text, created_at, author) VALUES "
            + ",".join(["(?,?,?,?,?)"] * len(chunk)),
            params,
        )
    catch_up(WHOLE_BACKLOG, db)
    return outcome


def _stored_sqlite(db: sqlite3.Connection, ids: list[int]) -> dict[int, Content]:
    """The stored messages among `ids` (ascending)."""
    stored: dict[int, Content] = {}
    newest = db.execute("SELECT max(id) FROM messages").fetchone()[0]
    if newest is None or newest < ids[0]:
        return stored  # a new database, or ids above all: nothing to look up, one step
    for start in range(0, len(ids), SQLITE_MAX_VARIABLES):
        chunk = ids[start : start + SQLITE_MAX_VARIABLES]
        rows = db.execute(
            "SELECT id, room_id, text, created_at, author FROM messages "
            f"WHERE id IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        for i, room, body, at, author in rows:
            moment = datetime.fromisoformat(at)
            stored[i] = (room, body, moment.replace(tzinfo=moment.tzinfo or UTC), author)
    return stored


class _PostgresImporter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def write(self, batch: Sequence[ImportedMessage]) -> Outcome:
        async with self._engine.begin() as conn:
            ids = sorted({m.id for m in batch})
            rows = await conn.execute(
                select(
                    Message.id, Message.room_id, Message.text, Message.created_at, Message.author
                ).where(Message.id.in_(ids))
            )
            new, outcome = _sort(batch, {row[0]: tuple(row[1:]) for row in rows})  # type: ignore[misc]
            if not new:
                return outcome
            await conn.execute(insert(Message.__table__), [_row(m) for m in new])
            await conn.execute(_count_rooms_postgres(), _room_rows(_room_counts(new)))
            # Never moved back (messages may have been written and deleted above the import).
            await conn.execute(_MOVE_SEQUENCE, {"top": max(m.id for m in new)})
        return outcome

    async def close(self) -> None:
        return None


_MOVE_SEQUENCE = text(
    "SELECT setval(seq, GREATEST(:top, coalesce(pg_sequence_last_value(seq), 0))) "
    "FROM (SELECT pg_get_serial_sequence('messages', 'id')::regclass AS seq) AS s"
)


def _row(m: ImportedMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "room_id": m.room_id,
        "text": m.text,
        "created_at": m.created_at,
        "author": m.author,
    }


def _room_rows(rooms: list[RoomCount]) -> list[dict[str, Any]]:
    return [
        {
            "room_id": r.room_id,
            "messages": r.messages,
            "last_message_id": r.last_id,
            "last_message_at": r.last_at,
        }
        for r in rooms
    ]


def _count_rooms_postgres() -> Any:
    stmt = postgresql.insert(Room.__table__)
    added = stmt.excluded
    newer = added.last_message_id > Room.last_message_id
    return stmt.on_conflict_do_update(
        index_elements=[Room.room_id],
        set_={
            "messages": Room.messages + added.messages,
            "last_message_id": case((newer, added.last_message_id), else_=Room.last_message_id),
            "last_message_at": case((newer, added.last_message_at), else_=Room.last_message_at),
        },
    )


def _exists(path: str) -> bool:
    return os.path.exists(path)


def _is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_file(engine: AsyncEngine) -> str:
    return database_file(engine.url.render_as_string(hide_password=False))
