"""The only code that runs SQL: the writer's batch insert, deletions, and the reads for REST and
replay (with store_search.py, store_delete.py and store_transfer.py)."""

import asyncio
import logging
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, Select, false, func, or_, select, text, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.auth import RoomSet
from app.db import sqlite_on_connect
from app.messages import StoredMessage
from app.models import Message, Room
from app.search_index import SearchIndexFollower
from app.sqlite_thread import SqliteThread, database_file
from app.store_delete import (
    delete_expired_sqlite,
    delete_postgres,
    delete_sqlite,
    expired_postgres,
    optimize_search_index,
    rooms_of,
    try_lock_postgres,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

REPLAY_CAP = 1000
# How long the writer waits for another process's lock on a room (PostgreSQL).
ROOM_LOCK_WAIT = 2.0
LOCK_NOT_AVAILABLE = "55P03"
# Concurrent reads; the pool has 15 connections (5 + 10 overflow), the rest are the writer's.
READERS = 10

# What readers see of a message (StoredMessage's leading fields); never the client key.
_COLUMNS = (
    Message.id,
    Message.room_id,
    Message.text,
    Message.created_at,
    Message.author,
    Message.author_id,
)


class NewMessage(NamedTuple):
    """An accepted message on its way to the writer: immutable, a tuple for the cost of
    making one per message (see StoredMessage)."""

    room_id: str
    text: str
    created_at: datetime
    sender: str | None = None  # the connection's token, for `own` (not stored)
    author: str | None = None
    author_id: str | None = None
    key: str | None = None  # the client's idempotency key (`chat.v2.json`)


@dataclass(slots=True, frozen=True)
class Written:
    """What a batch became: the messages stored now, in id order, and the retries of keys
    already stored, each with its position in the batch and the stored message (carrying the
    retry's sender and key), to be answered to that sender alone."""

    stored: list[StoredMessage]
    repeats: list[tuple[int, StoredMessage]]


@dataclass(slots=True, frozen=True)
class RoomSummary:
    room_id: str
    messages: int
    last_message_at: datetime


@dataclass(slots=True)
class RoomCount:
    """What one batch adds to a room's row in `rooms`."""

    room_id: str
    messages: int
    last_id: int
    last_at: datetime


@dataclass(slots=True, frozen=True)
class Snapshot:
    """A room's replay, and the id at or below which every committed message is in it or older."""

    messages: list[StoredMessage]
    cutoff: int
    # False when a `?since=` replay was cut by REPLAY_CAP: older messages above `since` remain.
    complete: bool = True


class Transaction:
    """One batch's write, inside `Store.locked`: `insert`, then `commit`. `refused` are the
    rooms whose lock could not be had within ROOM_LOCK_WAIT: nothing of theirs may be written."""

    def __init__(
        self,
        store: "Store",
        conn: AsyncConnection,
        rooms: list[str],
        refused: frozenset[str] = frozenset(),
    ) -> None:
        self._store = store
        self._conn = conn
        self.rooms = rooms
        self.refused = refused

    async def previous_ids(self) -> dict[str, int]:
        """Each locked room's newest committed id before this batch (0 for a new room): read
        under the lock, so it is the id the batch's first message of the room follows."""
        previous = dict.fromkeys(self.rooms, 0)
        for start in range(0, len(self.rooms), 500):
            rows = await self._conn.execute(
                select(Room.room_id, Room.last_message_id).where(
                    Room.room_id.in_(self.rooms[start : start + 500])
                )
            )
            previous.update({room: last or 0 for room, last in rows})
        return previous

    async def insert(self, batch: Sequence[NewMessage]) -> "Written":
        """Insert the batch (rooms of `rooms` only); new messages come back in id order.

        A keyed message whose key is already stored in its room (or earlier in the batch) is
        not stored again: it comes back in `Written.repeats` as the stored message, for its
        sender alone. The database recognises the key (INSERT ... ON CONFLICT DO NOTHING), so
        retries racing in one batch, in consecutive batches or in two processes store one row.
        """
        return await self._store._write(self._conn, batch)

    async def delete(self, ids: Sequence[int]) -> Counter[str]:
        """Delete the messages of `ids` in the locked rooms; how many went, per room."""
        return await delete_postgres(self._conn, self.rooms, ids)

    async def commit(self) -> None:
        await self._conn.commit()


class SqliteTransaction:
    """`Transaction` on SQLite: the whole write in ONE call to the writer's own thread
    (app/sqlite_thread.py). `insert` begins, inserts, counts the rooms, looks up retried keys
    and commits; `commit` then has nothing left to do. One process writes a SQLite file
    (app/sqlite_guard.py), so there are no rooms to lock and none refused."""

    def __init__(self, store: "Store", thread: SqliteThread, rooms: list[str]) -> None:
        self._store = store
        self._thread = thread
        self.rooms = rooms
        self.refused: frozenset[str] = frozenset()

    async def previous_ids(self) -> dict[str, int]:
        return await self._thread.transaction(partial(_previous_ids_sqlite, self.rooms))

    async def insert(self, batch: Sequence[NewMessage]) -> "Written":
        """`Transaction.insert`, committed."""
        return await self._store._write(None, batch)

    async def delete(self, ids: Sequence[int]) -> Counter[str]:
        """`Transaction.delete`, committed."""
        gone = await self._thread.transaction(partial(delete_sqlite, self.rooms, list(ids)))
        self._store.deleted_since_start |= bool(gone)
        return gone

    async def commit(self) -> None:
        return None  # `insert` committed


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._reads = asyncio.Semaphore(READERS)
        # SQLite: the writer's transactions, each in one call to a thread of its own, and
        # the order of the writer's batches and the deletions among them (see `locked`).
        self._sqlite = _sqlite_thread(engine) if self._dialect == "sqlite" else None
        self._order = asyncio.Lock()
        # SQLite: the search index follows the stored messages in batches (search_index.py).
        self._search_index = SearchIndexFollower(self._sqlite) if self._sqlite else None
        # Whether this process deleted messages: their words leave SQLite's search index at
        # the clean stop (`close`).
        self.deleted_since_start = False

    async def close(self) -> None:
        """At a clean stop on SQLite: the search index is brought up to date, and after
        deletions merged, so that the deleted messages' words leave the file too
        (store_delete.py)."""
        if self._sqlite is None:
            return
        if self._search_index is not None:
            try:
                await self._search_index.close()
            except Exception:
                log.exception("bringing the search index up to date at the stop failed")
        if self.deleted_since_start:
            try:
                await self._sqlite.transaction(optimize_search_index)
            except Exception:
                log.exception("merging the search index at the stop failed")
        await self._sqlite.close()

    @asynccontextmanager
    async def locked(
        self, room_ids: Iterable[str]
    ) -> AsyncIterator["Transaction | SqliteTransaction"]:
        """A write transaction that holds the rooms' locks until it exits.

        On PostgreSQL each room is locked with a session advisory lock, taken in sorted order
        (two writers locking overlapping rooms cannot deadlock) and released only when the
        block exits, after the commit: the writer publishes inside the block, so that a room's
        next batch, in any process, commits only after this one was handed on. What is not
        committed when the block exits is rolled back. On SQLite one process writes (see
        `app.sqlite_guard`): one lock in the process orders its writes and their publishing.
        """
        rooms = sorted(set(room_ids))
        if self._sqlite is not None:
            async with self._order:
                yield SqliteTransaction(self, self._sqlite, rooms)
            return
        async with self.engine.connect() as conn:
            try:
                refused = await self._lock_rooms(conn, rooms)
                locked = [room for room in rooms if room not in refused]
                yield Transaction(self, conn, locked, refused)
            finally:
                await _unlock_rooms(conn)

    async def _write(self, conn: AsyncConnection | None, batch: Sequence[NewMessage]) -> Written:
        """A transaction's insert: on SQLite (no `conn`) the whole transaction in one call to
        the writer's thread, committed; on PostgreSQL in the locked transaction of `conn`."""
        if conn is None:
            assert self._sqlite is not None
            if _one_statement(batch):  # the common batch: SQLite's own one-statement transaction
                written = await self._sqlite.statements(partial(_write_sqlite, batch))
            else:
                written = await self._sqlite.transaction(partial(_write_sqlite, batch))
            if self._search_index is not None:
                self._search_index.stored(len(written.stored))
            return written
        rows, row_of = _first_of_each_key(batch)
        ids = _ids_by_row(rows, await self._insert_postgres(conn, rows))
        stored = _stored(rows, ids)
        if stored:
            await self._count_rooms_postgres(conn, _per_room(stored))
        before: dict[tuple[str, str | None], StoredMessage] = {}
        if len(stored) < len(rows):  # some keys were stored before: only then a query
            before = await _stored_keys(conn, _not_stored(rows, ids))
        return _written(batch, rows, row_of, ids, stored, before)

    async def _insert_postgres(
        self, conn: AsyncConnection, rows: Sequence[NewMessage]
    ) -> list[tuple[int, str, str | None]]:
        # SQLAlchemy sends INSERT ... SELECT ... ORDER BY (its "insertmanyvalues" sentinel), so
        # ids follow the rows' order; a skipped row takes no place in RETURNING.
        stmt = (
            postgresql.insert(Message.__table__)
            .on_conflict_do_nothing(
                index_elements=[Message.room_id, Message.client_key],
                index_where=Message.client_key.is_not(None),  # the index is partial
            )
            .returning(
                Message.id, Message.room_id, Message.client_key, sort_by_parameter_order=True
            )
        )
        result = await conn.execute(
            stmt,
            [
                {
                    "room_id": m.room_id,
                    "text": m.text,
                    "created_at": m.created_at,
                    "author": m.author,
                    "author_id": m.author_id,
                    "client_key": m.key,
                }
                for m in rows
            ],
        )
        return [(row[0], row[1], row[2]) for row in result]

    async def _lock_rooms(self, conn: AsyncConnection, room_ids: list[str]) -> frozenset[str]:
        """Lock the rooms, waiting at most ROOM_LOCK_WAIT for each; the rooms refused.

        Sorted, so that two writers locking overlapping rooms cannot deadlock. A session lock
        (not a transaction lock) because it must outlive the commit, until the publish. The
        wait is bounded because one writer serves every room: a room held by a stalled or
        partitioned process must fail its own messages, not freeze the whole chat.
        """
        refused: set[str] = set()
        bounded = False
        for room_id in room_ids:
            try:
                if not bounded:  # for this transaction: a refusal rolls it back
                    await conn.execute(
                        text("SELECT set_config('lock_timeout', :wait, true)"),
                        {"wait": f"{int(ROOM_LOCK_WAIT * 1000)}ms"},
                    )
                    bounded = True
                await conn.execute(
                    text("SELECT pg_advisory_lock(hashtextextended(:room, 0))"), {"room": room_id}
                )
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                    raise
                await conn.rollback()  # session locks taken so far are kept
                bounded = False
                refused.add(room_id)
        return frozenset(refused)

    async def _count_rooms_postgres(self, conn: AsyncConnection, rooms: list[RoomCount]) -> None:
        stmt = postgresql.insert(Room.__table__)
        stmt = stmt.on_conflict_do_update(
            index_elements=[Room.room_id],
            set_={
                "messages": Room.messages + stmt.excluded.messages,
                "last_message_id": stmt.excluded.last_message_id,
                "last_message_at": stmt.excluded.last_message_at,
            },
        )
        rows = [
            {
                "room_id": r.room_id,
                "messages": r.messages,
                "last_message_id": r.last_id,
                "last_message_at": r.last_at,
            }
            for r in rooms
        ]
        await conn.execute(stmt, rows)

    async def page(
        self, room_id: str, *, limit: int, before: int | None = None, after: int | None = None
    ) -> list[StoredMessage]:
        """Oldest first: the newest `limit` below `before`, or with `after` the oldest above it."""
        query = select(*_COLUMNS).where(Message.room_id == room_id)
        if before is not None:
            query = query.where(Message.id < before)
        if after is not None:
            return await self._fetch(query.where(Message.id > after).order_by(Message.id), limit)
        return (await self._fetch(query.order_by(Message.id.desc()), limit))[::-1]

    async def between(
        self, room_id: str, after: int, through: int, limit: int
    ) -> list[StoredMessage]:
        """A room's messages with after < id <= through, oldest first, at most `limit`."""
        query = select(*_COLUMNS).where(
            Message.room_id == room_id, Message.id > after, Message.id <= through
        )
        return await self._fetch(query.order_by(Message.id), limit)

    async def snapshot(self, room_id: str, *, since: int | None, last: int) -> Snapshot:
        """The replay for a joiner: the last `last` messages, or with `since` those above it.

        The join's cutoff, in this one place: the highest id this one query read, else 0. Ids
        of a room commit in id order, so every message of the room committed later has a
        higher id and reaches the joiner live; everything at or below the cutoff is committed
        and in the replay or older. With `since` the query also reads the room's highest id at
        or below it, so a `since` beyond the room's newest id (a database that was reset) does
        not hide the messages to come.
        """
        if since is None and last == 0:
            return Snapshot([], 0)
        query = select(*_COLUMNS).where(Message.room_id == room_id)
        if since is None:
            rows = await self._fetch(query.order_by(Message.id.desc()), last)
        else:
            at_or_below = (
                select(func.coalesce(func.max(Message.id), 0))
                .where(Message.room_id == room_id, Message.id <= since)
                .scalar_subquery()
            )
            query = query.where(Message.id >= at_or_below).order_by(Message.id.desc())
            rows = await self._fetch(query, REPLAY_CAP + 1)
        cutoff = rows[0].id if rows else 0  # newest first
        if since is None:
            return Snapshot(rows[::-1], cutoff)
        above = [m for m in rows if m.id > since]
        # One row over the cap tells whether the cap cut the replay.
        return Snapshot(above[:REPLAY_CAP][::-1], cutoff, complete=len(above) <= REPLAY_CAP)

    async def message(self, room_id: str, message_id: int) -> StoredMessage | None:
        """One stored message of a room, or None."""
        query = select(*_COLUMNS).where(Message.room_id == room_id, Message.id == message_id)
        found = await self._fetch(query, 1)
        return found[0] if found else None

    async def delete_expired(self, before: datetime, most: int) -> int:
        """Delete up to `most` of the oldest messages created before `before`, in one short
        transaction; how many went. Rooms whose lock another process holds are left for the
        next batch (PostgreSQL)."""
        if self._sqlite is not None:
            work = partial(delete_expired_sqlite, _sqlite_time(before), most)
            gone = await self._sqlite.transaction(work)
            self.deleted_since_start |= bool(gone)
            return gone.total()
        async with self._reading() as conn:
            expired = await expired_postgres(conn, before, most)
        if not expired:
            return 0
        async with self.locked(rooms_of(expired)) as tx:
            gone = await tx.delete([i for i, room in expired if room not in tx.refused])
            await tx.commit()
        return gone.total()

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        """Whether this process may run the job `name` now: on PostgreSQL one process at a
        time (a session lock, not waited for); on SQLite one process serves a file anyway."""
        if self._sqlite is not None:
            yield True
            return
        async with self.engine.connect() as conn:
            mine = await try_lock_postgres(conn, name)
            await conn.commit()
            try:
                yield mine
            finally:
                if mine:
                    await _unlock_rooms(conn)

    async def rooms(self, *, limit: int, readable: RoomSet | None = None) -> list[RoomSummary]:
        """Rooms that have messages, most recently active first; only those in `readable`."""
        query = (
            select(Room.room_id, Room.messages, Room.last_message_at)
            .order_by(Room.last_message_id.desc())
            .limit(limit)
        )
        if readable is not None and not readable.every:
            query = query.where(_in_room_set(Room.room_id, readable))
        async with self._reading() as conn:
            result = await conn.execute(query)
            return [RoomSummary(*row) for row in result]

    async def search_index_current(self) -> None:
        """Return once every message stored so far is in the search index (SQLite's follows
        the messages in batches; PostgreSQL's is always current)."""
        if self._search_index is not None:
            await self._search_index.current()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        # A join storm queues here rather than timing out in the connection pool, and leaves
        # pooled connections for the writer.
        async with self._reads, self.engine.connect() as conn:
            yield conn

    async def fetch(self, query: Select[Any], limit: int) -> list[StoredMessage]:
        """At most `limit` rows of `_COLUMNS`, read like every other read (store_search.py)."""
        return await self._fetch(query, limit)

    async def _fetch(self, query: Select[Any], limit: int) -> list[StoredMessage]:
        async with self._reading() as conn:
            result = await conn.execute(query.limit(limit))
            return _messages(result)


# SQLite's own statements for the writer's hot path, run on app/sqlite_thread.py's connection
# (the whole batch in one call to its thread). Plain SQL: SQLAlchemy's per-row parameter
# processing was a quarter of the event loop's time under load (py-spy), and it cannot keep the
# order of a multi-row INSERT on SQLite, so it would send one INSERT per row. SQLite assigns a
# statement's ids ascending in VALUES order under its write lock: they follow the batch (a row
# skipped by ON CONFLICT DO NOTHING takes no id).
# SQLite refuses a statement with more parameters than its bound (32,766 since 3.32, 999
# before; a build may set another): a batch is written in as many statements as that takes.
SQLITE_MAX_VARIABLES = min(
    sqlite3.connect(":memory:").getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER), 32_766
)
_PARAMETERS_A_ROW = 6  # the writer's INSERT: room_id, text, created_at, author, author_id, key


def _one_statement(batch: Sequence[NewMessage]) -> bool:
    """Whether `_write_sqlite` writes `batch` with one statement and nothing else: no key (a
    keyed batch may have to look up what its repeated keys are stored as, in the same
    transaction) and within one INSERT's parameters."""
    fits = len(batch) * _PARAMETERS_A_ROW <= SQLITE_MAX_VARIABLES  # as `_chunks` cuts
    return fits and all(m.key is None for m in batch)


def _write_sqlite(batch: Sequence[NewMessage], db: sqlite3.Connection) -> Written:
    """`Transaction.insert` on SQLite, on app/sqlite_thread.py's thread: the INSERT (whose
    trigger, migration 0007, counts each row in its room; the search index follows later,
    app/search_index.py), and for retried keys their stored messages. In a transaction, unless
    `_one_statement(batch)`."""
    rows, row_of = _first_of_each_key(batch)
    ids = _ids_by_row(rows, _insert_sqlite(db, rows))
    stored = _stored(rows, ids)
    before: dict[tuple[str, str | None], StoredMessage] = {}
    if len(stored) < len(rows):  # some keys were stored before: only then a query
        before = _stored_keys_sqlite(db, _not_stored(rows, ids))
    return _written(batch, rows, row_of, ids, stored, before)


def _sqlite_time(moment: datetime) -> str:
    """What SQLAlchemy's SQLite DATETIME writes and reads: "%Y-%m-%d %H:%M:%S.%f" in UTC.
    The writer's timestamps are in UTC already: those take the fast way (a third of
    `strftime`'s time, once a row)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(" ", "microseconds")[:26]


def _insert_sqlite(
    db: sqlite3.Connection, batch: Sequence[NewMessage]
) -> list[tuple[int, str, str | None]]:
    returned: list[tuple[int, str, str | None]] = []
    for chunk in _chunks(batch, per_row=_PARAMETERS_A_ROW):
        params: list[str | None] = []
        for room, body, at, _, author, author_id, key in chunk:  # NewMessage's fields
            # _sqlite_time, inline: once a row, and the writer's times are in UTC
            when = at.isoformat(" ", "microseconds")[:26] if at.tzinfo is UTC else _sqlite_time(at)
            params += (room, body, when, author, author_id, key)
        values = ",".join(["(?,?,?,?,?,?)"] * len(chunk))
        cursor = db.execute(
            "INSERT INTO messages (room_id, text, created_at, author, author_id, client_key) "
            f"VALUES {values} "
            "ON CONFLICT (room_id, client_key) WHERE client_key IS NOT NULL DO NOTHING",
            params,
        )
        # No RETURNING: reading N returned rows is N steps of SQLite, each giving the GIL away
        # and waiting to get it back from a busy event loop. When every row went in, they took
        # the consecutive ids up to the last one (each new row gets the largest id + 1, under
        # the write lock).
        inserted, last = cursor.rowcount, cursor.lastrowid
        if inserted == len(chunk):
            first = last - inserted + 1
            returned += [(first + k, m.room_id, m.key) for k, m in enumerate(chunk)]
        elif inserted:  # some keys were stored before (retries; a skipped row may use an id)
            # Under the write lock, the newest `inserted` rows are this statement's.
            newest = db.execute(
                "SELECT id, room_id, client_key FROM messages WHERE id <= ? "
                "ORDER BY id DESC LIMIT ?",
                (last, inserted),
            ).fetchall()
            returned += reversed(newest)
    return returned


def _stored_keys_sqlite(
    db: sqlite3.Connection, rows: Sequence[NewMessage]
) -> dict[tuple[str, str | None], StoredMessage]:
    """The stored messages of keys that were there before this batch (same transaction)."""
    known: dict[tuple[str, str | None], StoredMessage] = {}
    for chunk in _chunks(rows, per_row=2):
        params = [value for m in chunk for value in (m.room_id, m.key)]
        result = db.execute(keys_lookup_sql(len(chunk)), params)
        for i, room, body, at, author, author_id, key in result.fetchall():
            created = datetime.fromisoformat(at).replace(tzinfo=UTC)
            known[(room, key)] = StoredMessage(i, room, body, created, author, author_id)
    return known


def keys_lookup_sql(pairs: int) -> str:
    """The stored messages of `pairs` (room_id, client_key) parameters. A join, not
    `(room_id, client_key) IN (VALUES ...)`: SQLite walks the whole key index for a row-value
    IN, and seeks it once a pair for the join."""
    values = ",".join(["(?,?)"] * pairs)
    return (
        "SELECT m.id, m.room_id, m.text, m.created_at, m.author, m.author_id, m.client_key"
        f" FROM (VALUES {values}) AS v JOIN messages AS m"
        " ON m.room_id = v.column1 AND m.client_key = v.column2"
    )


def _previous_ids_sqlite(rooms: list[str], db: sqlite3.Connection) -> dict[str, int]:
    previous = dict.fromkeys(rooms, 0)
    for chunk in _chunks(rooms, per_row=1):
        marks = ",".join("?" * len(chunk))
        result = db.execute(
            f"SELECT room_id, last_message_id FROM rooms WHERE room_id IN ({marks})", chunk
        )
        previous.update({room: last or 0 for room, last in result.fetchall()})
    return previous


def _sqlite_thread(engine: AsyncEngine) -> SqliteThread:
    """The writer's own connection to the engine's file, opened with the engine's pragmas."""
    url = engine.url.render_as_string(hide_password=False)
    return SqliteThread(database_file(url), sqlite_on_connect(engine))


def _first_of_each_key(batch: Sequence[NewMessage]) -> tuple[list[NewMessage], list[int]]:
    """The rows to insert (a key once per room), and for each message the row it is stored as.

    Two sends of one key in one batch must not both reach the INSERT: one statement cannot
    skip a row that conflicts with another row of its own.
    """
    rows: list[NewMessage] = []
    row_of: list[int] = []
    first: dict[tuple[str, str], int] = {}
    for m in batch:
        if m.key is None:
            row_of.append(len(rows))
            rows.append(m)
            continue
        row = first.setdefault((m.room_id, m.key), len(rows))
        if row == len(rows):
            rows.append(m)
        row_of.append(row)
    return rows, row_of


def _ids_by_row(
    rows: Sequence[NewMessage], returned: list[tuple[int, str, str | None]]
) -> list[int | None]:
    """Each row's new id, or None where its key was stored before.

    `returned` is in id order, and ids are given in the rows' order, so the ids go to the rows
    in order, skipping the keyed rows that RETURNING left out (no key skips without a key).
    """
    if len(returned) == len(rows):
        return [row[0] for row in returned]
    inserted = {(room, key) for _, room, key in returned if key is not None}
    ids = iter(row[0] for row in returned)
    result: list[int | None] = []
    for m in rows:
        if m.key is None or (m.room_id, m.key) in inserted:
            result.append(next(ids))
        else:
            result.append(None)
    return result


def _stored(rows: Sequence[NewMessage], ids: list[int | None]) -> list[StoredMessage]:
    """The rows stored now, as messages, in id order."""
    return [
        StoredMessage(i, room, body, at, author, author_id, sender, key)
        for (room, body, at, sender, author, author_id, key), i in zip(rows, ids, strict=True)
        if i is not None
    ]


def _not_stored(rows: Sequence[NewMessage], ids: list[int | None]) -> list[NewMessage]:
    return [m for m, i in zip(rows, ids, strict=True) if i is None]


def _written(
    batch: Sequence[NewMessage],
    rows: Sequence[NewMessage],
    row_of: list[int],
    ids: list[int | None],
    stored: list[StoredMessage],
    before: dict[tuple[str, str | None], StoredMessage],
) -> Written:
    """The batch's outcome: new messages, and each retry answered with what its key is stored
    as, new in this batch or from `before` it."""
    if len(stored) == len(batch):
        return Written(stored, [])  # the common case: every message is new
    known = before | {(m.room_id, m.key): m for m in stored if m.key is not None}
    repeats: list[tuple[int, StoredMessage]] = []
    for position, m in enumerate(batch):
        row = row_of[position]
        if rows[row] is m and ids[row] is not None:
            continue  # stored now, by this very send
        original = known.get((m.room_id, m.key))
        if original is None:
            log.warning("a retry's message in room %r is no longer stored", m.room_id)
            continue  # deleted between the INSERT and the look-up: nothing to answer
        repeats.append((position, original._replace(sender=m.sender, key=m.key)))
    return Written(stored, repeats)


async def _stored_keys(
    conn: AsyncConnection, rows: Sequence[NewMessage]
) -> dict[tuple[str, str | None], StoredMessage]:
    """The stored messages of keys that were there before this batch (same transaction)."""
    found: dict[tuple[str, str | None], StoredMessage] = {}
    for chunk in _chunks(rows, per_row=2):  # within SQLite's bound on parameters
        query = select(*_COLUMNS, Message.client_key).where(
            tuple_(Message.room_id, Message.client_key).in_([(m.room_id, m.key) for m in chunk]),
            Message.client_key.is_not(None),  # what lets the partial index serve the query
        )
        result = await conn.execute(query)
        found |= {(row[1], row[6]): StoredMessage(*row[:6]) for row in result}
    return found


def _chunks(rows: Sequence[T], *, per_row: int) -> Iterator[Sequence[T]]:
    """`rows` in slices whose statements stay within SQLite's bound on parameters."""
    size = max(1, SQLITE_MAX_VARIABLES // per_row)
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _per_room(stored: list[StoredMessage]) -> list[RoomCount]:
    counts: dict[str, int] = {}
    last: dict[str, StoredMessage] = {}
    for m in stored:
        counts[m.room_id] = counts.get(m.room_id, 0) + 1
        last[m.room_id] = m
    return [
        RoomCount(room, counts[room], m.id, m.created_at.astimezone(UTC))
        for room, m in last.items()
    ]


async def _unlock_rooms(conn: AsyncConnection) -> None:
    try:
        if conn.in_transaction():
            await conn.rollback()  # a failed batch: nothing of it was committed
        await conn.execute(text("SELECT pg_advisory_unlock_all()"))
        await conn.commit()
    except Exception as exc:
        # Never hand a connection that may still hold locks back to the pool: a lost session
        # releases its locks, a pooled one would keep them. The batch's fate is already known.
        log.warning("releasing room locks failed, dropping the connection: %s", exc)
        await conn.invalidate()


def _in_room_set(column: Any, rooms: RoomSet) -> ColumnElement[bool]:
    """SQL for "`column` is in `rooms`": case-sensitive on every database (SQLite's LIKE is
    not), and no pattern syntax to escape (room ids hold `_`)."""
    tests: list[ColumnElement[bool]] = []
    if rooms.exact:
        tests.append(column.in_(sorted(rooms.exact)))
    tests += [func.substr(column, 1, len(p)) == p for p in rooms.prefixes]
    return or_(*tests) if tests else false()


def _messages(rows: Iterable[Any]) -> list[StoredMessage]:
    return [StoredMessage(*row) for row in rows]
