"""SQLite's search index follows the stored messages in batches (app/search_index.py, migration
0008): in the background, before every search, at a clean stop; and nothing is lost to a
crash. Through a real server where the behaviour is the user's (a search finds what was sent,
a restart after a crash loses nothing from search), at unit level for the follower's timing."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from app import search_index
from app.auth import RoomSet
from app.db import create_engine
from app.schema import prepare_schema
from app.search import parse
from app.store import Store
from app.store_search import find
from tests.test_search import search, send
from tests.test_sqlite_thread import insert, message

EVERY = RoomSet(every=True)


def mark_and_newest(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path, timeout=10) as db:
        (mark,) = db.execute("SELECT indexed_through FROM messages_fts_state").fetchone()
        (newest,) = db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()
    return mark, newest


def indexed(path: Path, words: str) -> list[int]:
    with sqlite3.connect(path, timeout=10) as db:
        found = db.execute(
            "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid", (words,)
        ).fetchall()
    return [rowid for (rowid,) in found]


def index_matches_the_table(path: Path) -> None:
    """FTS5 compares its index with `messages` row by row; raises if they differ."""
    with sqlite3.connect(path, timeout=10) as db:
        db.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")


def test_sent_messages_reach_the_index_without_a_search(start_server, tmp_path) -> None:
    server = start_server({"CHAT_RATE_LIMIT": "0"})
    ids = send(server, "background", ["first of three", "second of three", "third of three"])
    deadline = time.monotonic() + 20
    while mark_and_newest(tmp_path / "chat.db")[0] < ids[-1] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert indexed(tmp_path / "chat.db", "three") == ids  # nobody searched


def test_messages_a_crash_left_unindexed_are_found_after_the_restart(
    start_server, tmp_path
) -> None:
    server = start_server({"CHAT_RATE_LIMIT": "0"})
    send(server, "crash", ["before the crash"])
    server.kill()
    # What a process killed between its commit and the catch-up leaves: stored, above the mark.
    with sqlite3.connect(tmp_path / "chat.db") as db:
        db.executemany(
            "INSERT INTO messages (room_id, text, created_at) VALUES ('crash', ?, ?)",
            [(f"left unindexed {i}", "2026-12-01 10:00:00.000000") for i in range(3)],
        )
    mark, newest = mark_and_newest(tmp_path / "chat.db")
    assert mark < newest
    server = start_server({"CHAT_RATE_LIMIT": "0"})
    found = search(server, "unindexed", room_id="crash")
    assert [m["text"] for m in found] == [f"left unindexed {i}" for i in (2, 1, 0)]
    server.stop()
    assert mark_and_newest(tmp_path / "chat.db")[0] == newest
    index_matches_the_table(tmp_path / "chat.db")


@pytest.fixture
def slow_store(store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A store whose background catch-up never comes by itself (an hour, a billion messages)."""
    monkeypatch.setattr(search_index, "DELAY", 3600.0)
    monkeypatch.setattr(search_index, "BATCH", 10**9)
    return store


@pytest.mark.anyio
async def test_a_search_finds_what_the_background_has_not_indexed_yet(
    slow_store: Store, tmp_path: Path
) -> None:
    written = await insert(slow_store, [message("not yet indexed"), message("indexed never")])
    ids = [m.id for m in written.stored]
    assert indexed(tmp_path / "chat.db", "indexed") == []
    # A message deleted before it was indexed leaves the index as it was.
    async with slow_store.locked(["r"]) as tx:
        await tx.delete([ids[1]])
        await tx.commit()
    found = await find(slow_store, parse("indexed"), rooms=EVERY, limit=10)
    assert [m.id for m in found] == [ids[0]]
    assert mark_and_newest(tmp_path / "chat.db") == (ids[0], ids[0])  # the other is gone
    index_matches_the_table(tmp_path / "chat.db")


@pytest.mark.anyio
async def test_a_full_batch_starts_a_catch_up_at_once(
    slow_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_index, "BATCH", 3)
    await insert(slow_store, [message("one"), message("two")])
    await asyncio.sleep(0.2)
    assert indexed(tmp_path / "chat.db", "one OR two OR three") == []
    written = await insert(slow_store, [message("three")])
    deadline = time.monotonic() + 10
    while mark_and_newest(tmp_path / "chat.db")[0] < written.stored[0].id:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert indexed(tmp_path / "chat.db", "one OR two OR three") == [1, 2, 3]


@pytest.mark.anyio
async def test_a_backlog_is_indexed_a_slice_a_transaction(
    slow_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_index, "SLICE", 2)
    slices: list[tuple[int, int]] = []
    real = search_index.catch_up

    def counted(most: int, db: sqlite3.Connection) -> tuple[int, int]:
        slices.append(real(most, db))
        return slices[-1]

    monkeypatch.setattr(search_index, "catch_up", counted)
    await insert(slow_store, [message(f"backlog {i}") for i in range(5)])
    await slow_store.search_index_current()
    assert slices == [(2, 5), (4, 5), (5, 5)]
    assert indexed(tmp_path / "chat.db", "backlog") == [1, 2, 3, 4, 5]


@pytest.mark.anyio
async def test_a_clean_stop_leaves_the_index_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_index, "DELAY", 3600.0)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
    await prepare_schema(engine, auto_migrate=True)
    stopping = Store(engine)
    written = await insert(stopping, [message("stored just before the stop")])
    await stopping.close()
    await engine.dispose()
    assert mark_and_newest(tmp_path / "chat.db") == (written.stored[0].id,) * 2
    index_matches_the_table(tmp_path / "chat.db")


@pytest.mark.anyio
async def test_a_search_goes_to_the_writer_only_when_something_was_stored_since(
    slow_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a server where nothing was stored since the last catch-up, a search does not queue
    behind the writer's commits; after a new message it does (and finds it)."""
    calls: list[tuple[int, int]] = []
    real = search_index.catch_up

    def counted(most: int, db: sqlite3.Connection) -> tuple[int, int]:
        calls.append(real(most, db))
        return calls[-1]

    monkeypatch.setattr(search_index, "catch_up", counted)
    await insert(slow_store, [message("first word")])
    assert [m.text for m in await find(slow_store, parse("word"), rooms=EVERY, limit=5)] == [
        "first word"
    ]
    assert len(calls) == 1
    await find(slow_store, parse("word"), rooms=EVERY, limit=5)
    assert len(calls) == 1  # current: no trip to the writer's thread
    await insert(slow_store, [message("second word")])
    found = await find(slow_store, parse("word"), rooms=EVERY, limit=5)
    assert [m.text for m in found] == ["second word", "first word"]
    assert len(calls) == 2


class GatedThread:
    """A stand-in for the writer's thread: each transaction waits for `gate`; `calls` counts
    them, `closed` is set when the store would close the real one."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls = 0
        self.after_close = 0
        self.closed = False

    async def transaction(self, work: object) -> tuple[int, int]:
        self.calls += 1
        self.after_close += self.closed
        await self.gate.wait()
        return 1, 1


@pytest.mark.anyio
async def test_no_catch_up_is_left_to_run_after_the_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages stored while a background catch-up runs, then the stop: nothing may start
    another catch-up on the writer's thread once it is closed."""
    monkeypatch.setattr(search_index, "DELAY", 0.05)
    thread = GatedThread()
    follower = search_index.SearchIndexFollower(thread)  # type: ignore[arg-type]
    follower.stored(1)
    await asyncio.sleep(0.1)  # the delay passed: a catch-up runs, held at the gate
    assert thread.calls == 1
    follower.stored(1)  # stored meanwhile: one more catch-up is due
    closing = asyncio.create_task(follower.close())
    await asyncio.sleep(0)
    thread.gate.set()
    await closing
    thread.closed = True
    await asyncio.sleep(0.2)  # past the delay: a catch-up scheduled at the stop would run now
    assert thread.after_close == 0
