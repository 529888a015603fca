"""A thread that owns one stdlib `sqlite3` connection and runs whole write transactions on it,
each in ONE call: one hop from the event loop there and one back, however many statements.

Why: through SQLAlchemy and aiosqlite every statement, fetch, cursor, commit and pool reset is
a trip of its own to the driver's thread, about ten for one batch of the writer, and each trip
comes back only when the event loop gets round to it, behind whatever it is doing (at an
ordinary load, the fan-out of the batch before). That chain of waits, not CPU, was most of the
writer's latency (docs/performance.md).

The connection is opened with the engine's own pragmas (app/db.py: WAL, `synchronous`, busy
timeout, ...), in autocommit mode: `transaction` begins (IMMEDIATE: the write lock is taken at
once, so a busy database is waited for before any work) and commits or rolls back itself;
`statements` runs work that is one statement, which SQLite makes a transaction of its own
(the writer's plain batch: its trigger counts it in its rooms inside that statement, so the
whole transaction is one step of SQLite and the GIL is given away and taken back once, not
once for each of BEGIN, the statements and COMMIT). SQLite errors come back as SQLAlchemy's
exception classes, as they would from the engine.
"""

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

T = TypeVar("T")
OnConnect = Callable[[sqlite3.Connection, Any], None]


def database_file(url: str) -> str:
    """The file of a SQLite URL; ValueError where a second connection would not see the
    same database (in memory, URI filenames)."""
    parsed = make_url(url)
    database = parsed.database
    if not database or database == ":memory:" or parsed.query.get("uri"):
        raise ValueError(f"SQLite needs a database file, not {database or 'memory'!r}")
    return database


class SqliteThread:
    def __init__(self, path: str, on_connect: OnConnect) -> None:
        self._path = path
        self._on_connect = on_connect
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._db: sqlite3.Connection | None = None

    async def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(db)` in one transaction on the thread; commit, or roll back and raise."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._transaction, work)

    async def statements(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(db)` on the thread with no transaction around it: each statement commits
        on its own. For work that is ONE writing statement (all of it or nothing, by SQLite)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._statements, work)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._close)
        self._pool.shutdown(wait=True)

    # On the thread from here on.

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self._path, isolation_level=None)
            self._on_connect(db, None)
            self._db = db
        return self._db

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return self._statements(partial(_in_transaction, work))

    def _statements(self, work: Callable[[sqlite3.Connection], T]) -> T:
        db = self._connect()
        try:
            return work(db)
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise DBAPIError.instance(None, None, exc, sqlite3.Error) from exc
            if isinstance(exc, StopIteration):  # cannot be set on an asyncio future: it hangs
                raise RuntimeError("StopIteration in a SQLite transaction") from exc
            raise

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _in_transaction(work: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    db.execute("BEGIN IMMEDIATE")
    result = work(db)
    db.execute("COMMIT")
    return result
