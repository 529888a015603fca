"""The app with a store that fails on demand: storage trouble without breaking a disk.

Served by `python -m app` in place of app.main (tests.support.faulty_server_command).
The knobs, all optional:
- CHAT_TEST_FAULT_FILE: while this file exists, every write and read fails (a broken disk);
- CHAT_TEST_POISON_TEXT: a write holding a message with exactly this text fails (a message
  the database refuses), and only such writes;
- CHAT_TEST_WRITE_DELAY: seconds each write waits first (so that batches gather);
- CHAT_TEST_SNAPSHOT_DELAY: seconds each joiner's history read waits first (a slow join);
- CHAT_TEST_SQLITE_VARIABLES: SQLite's bound on parameters per statement, lowered to this (as
  in an older or differently built SQLite: 999 before 3.32).
"""

import asyncio
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Select, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util.concurrency import await_

from app import store
from app.auth import RoomSet
from app.main import create_app
from app.messages import StoredMessage
from app.store import NewMessage, RoomSummary, Snapshot, Store, Written


class InjectedFault(OSError):
    pass


class RefusedText(ValueError):
    pass


def _seconds(name: str) -> float:
    return float(os.environ.get(name) or 0)


class FaultyStore(Store):
    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        if variables := int(os.environ.get("CHAT_TEST_SQLITE_VARIABLES") or 0):
            _lower_sqlite_bound(engine, variables)
            if self._sqlite is not None:  # the writer's own connection (app/sqlite_thread.py)
                pragmas = self._sqlite._on_connect

                def lowered(db: sqlite3.Connection, record: Any) -> None:
                    pragmas(db, record)
                    db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variables)

                self._sqlite._on_connect = lowered

    @staticmethod
    def _check() -> None:
        fault = os.environ.get("CHAT_TEST_FAULT_FILE")
        if fault and Path(fault).exists():
            raise InjectedFault("disk I/O error (injected by the test)")

    async def _write(self, conn: AsyncConnection | None, batch: Sequence[NewMessage]) -> Written:
        self._check()
        if delay := _seconds("CHAT_TEST_WRITE_DELAY"):
            await asyncio.sleep(delay)
        poison = os.environ.get("CHAT_TEST_POISON_TEXT")
        if poison is not None and any(m.text == poison for m in batch):
            raise RefusedText("a text the database refuses (injected by the test)")
        return await super()._write(conn, batch)

    async def snapshot(self, room_id: str, *, since: int | None, last: int) -> Snapshot:
        if delay := _seconds("CHAT_TEST_SNAPSHOT_DELAY"):
            await asyncio.sleep(delay)
        return await super().snapshot(room_id, since=since, last=last)

    async def ping(self) -> None:
        self._check()
        await super().ping()

    async def page(
        self, room_id: str, *, limit: int, before: int | None = None, after: int | None = None
    ) -> list[StoredMessage]:
        self._check()
        return await super().page(room_id, limit=limit, before=before, after=after)

    async def fetch(self, query: Select[Any], limit: int) -> list[StoredMessage]:
        self._check()
        return await super().fetch(query, limit)

    async def rooms(self, *, limit: int, readable: RoomSet | None = None) -> list[RoomSummary]:
        self._check()
        return await super().rooms(limit=limit, readable=readable)


def _lower_sqlite_bound(engine: AsyncEngine, variables: int) -> None:
    """Make SQLite itself refuse statements over `variables` parameters, and say so to the
    store as a SQLite library built with that bound would."""
    store.SQLITE_MAX_VARIABLES = variables

    def lower(dbapi_connection: Any, *_: Any) -> None:
        # The sqlite3 connection lives in aiosqlite's thread: set the limit there.
        driver = dbapi_connection.driver_connection
        await_(
            driver._execute(driver._conn.setlimit, sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variables)
        )

    event.listen(engine.sync_engine, "checkout", lower)


def create() -> FastAPI:
    return create_app(store_factory=FaultyStore)


app = create()
