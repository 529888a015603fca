"""The project served with one thing changed, to measure a lever before anyone adopts it
(`python -m bench.variant NAME --port N`; `python -m bench --kinds project,NAME`).

Each variant is the app of `python -m app` (create_app, the same uvicorn options as
app/__main__.py) with some uvicorn options or the store swapped."""

import argparse
import asyncio
import gc
import os
import sys
import threading
from collections.abc import Sequence
from functools import partial
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection
from websockets.http11 import Request

from app import heap, search_index
from app.connection import SEND_NOW
from app.main import create_app
from app.protocol import ChatWebSocketProtocol
from app.search_index import SLICE, WHOLE_BACKLOG, catch_up
from app.settings import Settings
from app.sqlite_thread import _in_transaction
from app.store import NewMessage, Store, Written, _sqlite_thread, _write_sqlite
from app.writer import Writer
from bench.bulk import INDEX_LINE, TRIGGER, insert_trigger_sql
from bench.memstore import MemoryStore
from bench.search import UnindexedStore
from bench.writerconn import with_writer_setup

# The batched drain, the one-query snapshot and the plain socket route were measured here as
# variants and are now the project itself (see docs/performance.md).


class AiosqliteWrites(Store):
    """The writer's batches through SQLAlchemy and aiosqlite, as before app/sqlite_thread.py:
    the same statements, each (and the commit) a trip of its own to the driver's thread."""

    async def _write(self, conn: AsyncConnection | None, batch: Sequence[NewMessage]) -> Written:
        if conn is not None:
            return await super()._write(conn, batch)
        async with self.engine.begin() as sqlite:
            return await sqlite.run_sync(
                lambda sync: _write_sqlite(batch, _Hops(sync.connection.dbapi_connection))
            )


def _index_at_commit(db: Any) -> None:
    """The search index fed inside each commit, as before migration 0008: every stored
    message indexed (the mark past any id, so deletes take every message out again), and the
    insert trigger's index line without its condition."""
    sql = insert_trigger_sql(db)
    if INDEX_LINE not in sql:
        return  # replaced already (the connection was opened before)
    catch_up(WHOLE_BACKLOG, db)
    db.execute("UPDATE messages_fts_state SET indexed_through = ? WHERE id = 1", (WHOLE_BACKLOG,))
    db.execute(f"DROP TRIGGER {TRIGGER}")
    always = "INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);"
    db.execute(sql.replace(INDEX_LINE, always))


IndexAtCommit = with_writer_setup(_index_at_commit, "IndexAtCommit", follow_search_index=False)


def _no_room_counts(db: Any) -> None:
    """An experiment, wrong for `GET /rooms`: the insert trigger without its room counts (what
    the counts cost a commit at most)."""
    sql = insert_trigger_sql(db)
    if "INSERT INTO rooms" not in sql:
        return
    db.execute(f"DROP TRIGGER {TRIGGER}")
    db.execute(sql[: sql.index("INSERT INTO rooms")] + "END")


def _no_created_at_index(db: Any) -> None:
    """An experiment, slow for retention: no index on `created_at` (what it costs a commit)."""
    db.execute("DROP INDEX IF EXISTS ix_messages_created_at")


NoRoomCounts = with_writer_setup(_no_room_counts, "NoRoomCounts")
NoCreatedAtIndex = with_writer_setup(_no_created_at_index, "NoCreatedAtIndex")


def _niced(niceness: int) -> type[Store]:
    """The writer's thread at another scheduling priority than the event loop's (Linux: a
    thread's own nice value): above 0 the loop's frame writes come first on a shared core,
    below 0 (root or CAP_SYS_NICE) the commit that every delivery waits for does."""

    def setup(db: Any) -> None:  # runs on the writer's thread, as its connection opens
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)

    return with_writer_setup(setup, f"Niced{niceness}")


def _writer_on_core(core: int) -> type[Store]:
    """The writer's thread moved to another core than the event loop's (Linux: a thread's own
    affinity). In the bench that core is the load generator's: an experiment on what the
    writer costs the loop's core, not a fair kind."""

    def setup(db: Any) -> None:  # runs on the writer's thread, as its connection opens
        os.sched_setaffinity(threading.get_native_id(), {core})

    return with_writer_setup(setup, f"WriterOnCore{core}")


def _unsynced_catch_up(most: int, db: Any) -> tuple[int, int]:
    """One catch-up transaction committed without its own fsync (`synchronous=NORMAL` for it
    alone): the writer's next commit fsyncs the WAL, the catch-up's frames with it; one lost
    to a crash is redone from the mark."""
    (mode,) = db.execute("PRAGMA synchronous").fetchone()
    db.execute("PRAGMA synchronous=NORMAL")
    try:
        return _in_transaction(partial(catch_up, most), db)
    finally:
        if db.in_transaction:  # failed: roll back first (the level cannot change inside one)
            db.execute("ROLLBACK")
        db.execute(f"PRAGMA synchronous={mode}")


def _catch_up_unsynced() -> None:
    async def catch_up_all(thread: Any) -> None:
        through, target = await thread.statements(partial(_unsynced_catch_up, SLICE))
        while through < target:
            through, _ = await thread.statements(partial(_unsynced_catch_up, SLICE))

    search_index.catch_up_all = catch_up_all


def _follow_in(batch: int, delay: float) -> Any:
    """The search index caught up every `batch` messages or `delay` s (app/search_index.py)."""

    def patch() -> None:
        search_index.BATCH, search_index.DELAY = batch, delay

    return patch


class _Hops:
    """`sqlite3.Connection.execute` on SQLAlchemy's aiosqlite adapter: each call awaits
    aiosqlite's thread."""

    def __init__(self, dbapi_connection: Any) -> None:
        self._dbapi = dbapi_connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cursor = self._dbapi.cursor()
        cursor.execute(sql, tuple(params))
        return cursor


def _with_pragmas(*pragmas: str) -> type[Store]:
    """The store with the writer's connection given `pragmas` after app/db.py's own."""

    def setup(db: Any) -> None:
        for pragma in pragmas:
            db.execute(f"PRAGMA {pragma}")

    return with_writer_setup(setup, "PragmaStore")


class BackgroundCheckpoints(_with_pragmas("wal_autocheckpoint=0")):  # type: ignore[misc]
    """The WAL checkpointed by a thread and connection of its own every `every` seconds
    (PASSIVE: it never blocks the writer), the writer's own automatic checkpoint off: a
    checkpoint no longer runs inside one of the writer's commits, holding up the next."""

    every = 0.5

    def __init__(self, engine: Any) -> None:
        super().__init__(engine)
        self._checkpoints: asyncio.Task[None] | None = None
        # A connection of its own to the engine's file, with the engine's pragmas.
        self._checkpointer = _sqlite_thread(engine) if self._sqlite is not None else None

    async def _write(self, conn: AsyncConnection | None, batch: Sequence[NewMessage]) -> Written:
        if self._sqlite is not None and self._checkpoints is None:
            self._checkpoints = asyncio.create_task(self._checkpoint_every())
        return await super()._write(conn, batch)

    async def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            await asyncio.gather(self._checkpoints, return_exceptions=True)
        if self._checkpointer is not None:
            await self._checkpointer.close()
        await super().close()

    async def _checkpoint_every(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            assert self._checkpointer is not None
            await self._checkpointer.statements(
                lambda db: db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            )


class HeldWriter(Writer):
    """The writer with commits started at most every `hold` seconds: under a steady load a
    batch gathers what arrives in that time (fewer, larger commits); after a pause the first
    message is committed at once. An experiment for the ordinary load, not the project."""

    hold = 0.004

    _started = 0.0

    async def _next_batch(self) -> Any:
        loop = asyncio.get_running_loop()
        first = await self._queue.get()
        wait = self._started + self.hold - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._started = loop.time()
        return self._gathered([first])


class EagerWriter(Writer):
    """The writer starting its next commit at once, as before its turn (app/writer.py
    `Writer._turn`): the next commit's thread competes with the last batch's frame writes."""

    async def _turn(self) -> None:
        return None


def _held(seconds: float) -> type[Writer]:
    return type(f"HeldWriter{seconds}", (HeldWriter,), {"hold": seconds})


STORES: dict[str, type[Store]] = {
    "sqlite": Store,
    "memory": MemoryStore,
    "unindexed": UnindexedStore,
    "aiosqlite": AiosqliteWrites,
    # SQLite's defaults for what app/db.py sets on the writer's connection: a batch's
    # statement journal spilled to a temporary file past 64 KiB; a checkpoint every 1,000 pages.
    "tempfile": _with_pragmas("temp_store=DEFAULT"),
    "checkpoint-1000": _with_pragmas("wal_autocheckpoint=1000"),
    # No checkpoint at all while it runs (the WAL only grows): what checkpoints cost the tail.
    "checkpoint-never": _with_pragmas("wal_autocheckpoint=0"),
    "index-at-commit": IndexAtCommit,
    "no-room-counts": NoRoomCounts,
    "checkpoint-background": BackgroundCheckpoints,
    "writer-nice-5": _niced(5),
    "writer-nice-10": _niced(10),
    "writer-nice--5": _niced(-5),
    "writer-nice--10": _niced(-10),
    "writer-core-1": _writer_on_core(1),
    "no-created-at-index": NoCreatedAtIndex,
}

_freeze = heap.settle_after_startup


class TaskPerFrameProtocol(ChatWebSocketProtocol):
    """The project's protocol without `SEND_NOW`: every push to an idle connection starts a
    task that sends it, as before direct writes."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"].pop(SEND_NOW, None)


VARIANTS: dict[str, dict[str, Any]] = {
    # The project itself through this module: what the variants below differ from, alone.
    "same": {},
    "writes-aiosqlite": {"store": "aiosqlite"},
    "task-per-frame": {"ws": "bench.variant:TaskPerFrameProtocol"},
    # All three levers of issue 16 undone at once: the project as it was before them.
    "before": {
        "heap": lambda: None,
        "store": "aiosqlite",
        "ws": "bench.variant:TaskPerFrameProtocol",
    },
    "ws-legacy": {"ws": "websockets"},
    "ws-sansio": {"ws": "websockets-sansio"},
    "ws-wsproto": {"ws": "wsproto"},
    "loop-asyncio": {"loop": "asyncio"},
    "deflate": {"ws_per_message_deflate": True},
    "sync-normal": {"env": {"CHAT_SQLITE_SYNCHRONOUS": "NORMAL"}},
    "temp-store-file": {"store": "tempfile"},
    "checkpoint-1000": {"store": "checkpoint-1000"},
    "checkpoint-never": {"store": "checkpoint-never"},
    # The search index fed inside every commit by the insert trigger, as before migration
    # 0008 (the search index followed in batches).
    "index-at-commit": {"store": "index-at-commit"},
    # Upper bounds of two structures' cost to a commit (experiments: wrong for GET /rooms, slow
    # for retention).
    "no-room-counts": {"store": "no-room-counts"},
    "no-created-at-index": {"store": "no-created-at-index"},
    # The WAL checkpointed by a thread of its own, never inside one of the writer's commits.
    "checkpoint-background": {"store": "checkpoint-background"},
    # The writer's thread at nice 5 / 10: the loop first when both want the core.
    "writer-nice-5": {"store": "writer-nice-5"},
    "writer-nice-10": {"store": "writer-nice-10"},
    # The writer's thread at nice -5 / -10: the commit first when both want the core.
    "writer-nice--5": {"store": "writer-nice--5"},
    "writer-nice--10": {"store": "writer-nice--10"},
    # The writer's thread on core 1 (the generator's), the loop alone on core 0: what the
    # writer's share of the one core costs (an experiment; the generator has less of its core).
    "writer-core-1": {"store": "writer-core-1"},
    # The search index caught up in larger batches than app/search_index.py's 500 / 0.2 s.
    "follow-2000": {"patch": _follow_in(2000, 0.5)},
    # The search index's catch-ups committed without an fsync of their own.
    "catch-up-unsynced": {"patch": _catch_up_unsynced},
    # Commits started at most every 1 / 2 / 4 ms (HeldWriter): fewer, larger batches at a load.
    "hold-1ms": {"writer": _held(0.001)},
    "hold-2ms": {"writer": _held(0.002)},
    "hold-4ms": {"writer": _held(0.004)},
    # The next commit started at once, not after the turn that writes the last batch's frames.
    "commit-at-once": {"writer": EagerWriter},
    # The writer without the search index's per-batch statement (issue 12's cost of search).
    "no-search-index": {"store": "unindexed"},
    # The writer's batches capped lower than the default 1,000 (latency under load vs commits).
    "batch-100": {"env": {"CHAT_WRITE_BATCH": "100"}},
    "batch-300": {"env": {"CHAT_WRITE_BATCH": "300"}},
    # Python's collector as it was before app/heap.py: start-up's objects walked by every full
    # collection; and with a larger youngest generation on top of the freeze.
    "gc-default": {"heap": lambda: None},
    # The GIL handed to the SQLite writer thread within 1 ms of its asking, not 5 ms.
    "switch-1ms": {"heap": lambda: (_freeze(), sys.setswitchinterval(0.001))},
    "switch-200us": {"heap": lambda: (_freeze(), sys.setswitchinterval(0.0002))},
    "gc-young-10k": {"heap": lambda: (_freeze(), gc.set_threshold(10_000))},
    # The youngest generation collected every 700 allocations, Python's default (the project
    # collects it every app.heap.YOUNG).
    "gc-young-700": {"heap": lambda: (_freeze(), gc.set_threshold(700))},
}

_variant: dict[str, Any] = {}


def create() -> FastAPI:
    if "patch" in _variant:
        _variant["patch"]()
    if "heap" in _variant:
        heap.settle_after_startup = _variant["heap"]
    if "writer" in _variant:
        import app.main

        app.main.Writer = _variant["writer"]  # type: ignore[misc]
    application = create_app(Settings(), store_factory=STORES[_variant.get("store", "sqlite")])
    return application


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name", choices=sorted(VARIANTS))
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    _variant.update(VARIANTS[args.name])
    os.environ.update(_variant.pop("env", {}))
    settings = Settings()
    options: dict[str, Any] = {
        "ws": "app.protocol:ChatWebSocketProtocol",
        "ws_max_size": settings.max_message_bytes,
        "ws_per_message_deflate": False,
        "log_level": "warning",
    }
    own = ("store", "route", "heap", "writer", "patch")  # not uvicorn's options
    options.update({k: v for k, v in _variant.items() if k not in own})
    uvicorn.run(create, factory=True, host="127.0.0.1", port=args.port, **options)


if __name__ == "__main__":
    main()
