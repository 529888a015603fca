"""The SQLite writer's own connection and thread (app/sqlite_thread.py), unit level: the real
server's behaviour (every message stored, counted, keyed, replayed) is in the protocol tests."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from app.db import create_engine
from app.schema import prepare_schema
from app.sqlite_thread import database_file
from app.store import NewMessage, Store, Written

pytestmark = pytest.mark.anyio


def message(text: str, room: str = "r") -> NewMessage:
    return NewMessage(room, text, datetime.now(UTC), sender="s")


async def insert(store: Store, batch: list[NewMessage]) -> Written:
    """One batch as the writer writes it (app/writer.py)."""
    async with store.locked(m.room_id for m in batch) as tx:
        written = await tx.insert(batch)
        await tx.commit()
    return written


async def indexed(store: Store, match: str) -> int:
    """How many messages the search index holds for the FTS5 query `match`, once current."""
    assert store._sqlite is not None
    await store.search_index_current()
    return int(
        await store._sqlite.statements(
            lambda db: db.execute(
                "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", (match,)
            ).fetchone()[0]
        )
    )


async def test_the_writer_connection_has_the_engines_pragmas(store: Store) -> None:
    assert store._sqlite is not None

    def pragmas(db: sqlite3.Connection) -> dict[str, object]:
        names = (
            "journal_mode",
            "synchronous",
            "busy_timeout",
            "foreign_keys",
            "secure_delete",
            "temp_store",
            "wal_autocheckpoint",
        )
        return {name: db.execute(f"PRAGMA {name}").fetchone()[0] for name in names}

    assert await store._sqlite.transaction(pragmas) == {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL: a commit survives power loss (the default)
        "busy_timeout": 5000,
        "foreign_keys": 1,
        "secure_delete": 1,  # a deleted message's bytes are overwritten
        "temp_store": 2,  # MEMORY: a batch's statement journal never spills to a file
        "wal_autocheckpoint": 10_000,  # pages: fewer checkpoints copy fewer pages back
    }


async def test_a_batch_is_one_call_on_one_thread_off_the_loop(store: Store) -> None:
    assert store._sqlite is not None
    threads: list[str] = []
    calls = 0
    original = store._sqlite._statements

    def counted(work):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        threads.append(threading.current_thread().name)
        return original(work)

    store._sqlite._statements = counted  # type: ignore[method-assign]
    written = await insert(store, [message("a"), message("b", "other"), message("c")])
    assert calls == 1 and threads[0].startswith("sqlite-writer")
    assert threads[0] != threading.current_thread().name
    assert [m.text for m in written.stored] == ["a", "b", "c"]
    assert [m.id for m in written.stored] == sorted(m.id for m in written.stored)
    rooms = {r.room_id: r.messages for r in await store.rooms(limit=10)}
    assert rooms == {"r": 2, "other": 1}


class _Counting:
    """The writer's connection, recording each statement given to it (its first word)."""

    def __init__(self, db: sqlite3.Connection, said: list[str]) -> None:
        self._db, self._said = db, said

    def execute(self, sql: str, params: object = ()) -> sqlite3.Cursor:
        self._said.append(sql.split()[0])
        return self._db.execute(sql, params)  # type: ignore[arg-type]

    @property
    def in_transaction(self) -> bool:
        return self._db.in_transaction


async def test_a_plain_batch_is_one_statement_and_a_keyed_one_a_transaction(store: Store) -> None:
    """A batch without keys is written by ONE statement, its own transaction (its trigger
    indexes and counts inside it: one step of SQLite); a keyed batch, which may have to look
    up repeated keys, is BEGIN, INSERT, COMMIT; both are indexed and counted."""
    assert store._sqlite is not None
    said: list[str] = []
    connect = store._sqlite._connect
    store._sqlite._connect = lambda: _Counting(connect(), said)  # type: ignore[method-assign,assignment,return-value]
    await insert(store, [message("plain one"), message("plain two", "other")])
    assert said == ["INSERT"]
    said.clear()
    await insert(store, [message("keyed")._replace(key="k1"), message("keyed")._replace(key="k1")])
    assert said == ["BEGIN", "INSERT", "COMMIT"]
    said.clear()
    again = await insert(
        store, [message("keyed")._replace(key="k1"), message("new keyed")._replace(key="k2")]
    )
    # k1 is a repeat: which rows are new (the newest), then what k1 is stored as
    assert said == ["BEGIN", "INSERT", "SELECT", "SELECT", "COMMIT"]
    assert [m.text for m in again.stored] == ["new keyed"]
    assert [m.text for _, m in again.repeats] == ["keyed"]
    store._sqlite._connect = connect  # type: ignore[method-assign]
    rooms = {r.room_id: r.messages for r in await store.rooms(limit=10)}
    assert rooms == {"r": 3, "other": 1}
    assert await indexed(store, "plain OR keyed") == 4


async def test_a_batch_written_as_one_statement_is_all_or_nothing(store: Store) -> None:
    """`SqliteThread.statements` has no transaction of its own: a plain batch is atomic because
    it is one statement, its trigger included. A batch whose last row the database refuses
    leaves no row, no count and no search entry, and the connection writes again after."""
    assert store._sqlite is not None
    refused = message("refused")._replace(text=None)  # type: ignore[arg-type]  # NOT NULL
    with pytest.raises(IntegrityError):
        await insert(store, [message("first in the batch"), refused])
    assert await store.page("r", limit=10) == []
    assert await store.rooms(limit=10) == []
    assert await indexed(store, "first") == 0
    await insert(store, [message("first again")])
    assert [m.text for m in await store.page("r", limit=10)] == ["first again"]


async def test_a_failed_transaction_leaves_nothing_and_raises_sqlalchemys_error(
    store: Store,
) -> None:
    assert store._sqlite is not None

    def half_then_fail(db: sqlite3.Connection) -> None:
        db.execute(
            "INSERT INTO messages (room_id, text, created_at) VALUES ('r', 'x', '2026-01-01')"
        )
        db.execute(
            "INSERT INTO messages (id, room_id, text, created_at) SELECT id, 'r', 'y', ''"
            " FROM messages"
        )  # the same primary key again

    with pytest.raises(IntegrityError):
        await store._sqlite.transaction(half_then_fail)
    assert await store.page("r", limit=10) == []
    written = await insert(store, [message("after")])  # the connection is usable again
    assert [m.text for m in await store.page("r", limit=10)] == ["after"]
    assert written.stored[0].text == "after"


async def test_a_locked_database_is_an_operational_error_after_the_busy_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}", sqlite_busy_timeout_ms=100)
    await prepare_schema(engine, auto_migrate=True)
    store = Store(engine)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with pytest.raises(OperationalError, match="locked"):
            await insert(store, [message("waits")])
    finally:
        other.execute("ROLLBACK")
        other.close()
        await store.close()
        await engine.dispose()


def test_a_database_in_memory_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="needs a database file"):
        database_file("sqlite+aiosqlite:///:memory:")
    assert database_file("sqlite+aiosqlite:////tmp/x/chat.db") == "/tmp/x/chat.db"


async def test_times_read_back_as_written_whatever_their_zone(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    moments = [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds
        datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=plus_two),
        datetime.now(UTC),
    ]
    await insert(store, [NewMessage("t", str(i), m) for i, m in enumerate(moments)])
    assert [m.created_at for m in await store.page("t", limit=10)] == moments


async def test_a_bug_in_a_transaction_is_an_error_not_a_hang(store: Store) -> None:
    assert store._sqlite is not None

    def stops(db: sqlite3.Connection) -> None:
        next(iter(()))  # StopIteration cannot be set on an asyncio future

    with pytest.raises(RuntimeError, match="StopIteration"):
        await asyncio.wait_for(store._sqlite.transaction(stops), 10)
