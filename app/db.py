"""Declarative base with a naming convention, and the engine factory."""

from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the dialect stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        value = value.astimezone(UTC)
        # SQLite keeps the text as given: store it naive so every row sorts the same way.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(
    url: str, *, sqlite_busy_timeout_ms: int = 5000, sqlite_synchronous: str = "FULL"
) -> AsyncEngine:
    """The one engine of the app's life. SQLite is opened for concurrent readers (WAL)."""
    kwargs: dict[str, Any] = {}
    if is_sqlite(url):
        # aiosqlite's own timeout is the busy timeout, in seconds.
        kwargs["connect_args"] = {"timeout": sqlite_busy_timeout_ms / 1000}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        pragmas = _sqlite_pragmas(sqlite_busy_timeout_ms, sqlite_synchronous)
        event.listen(engine.sync_engine, "connect", pragmas)
        _SQLITE_ON_CONNECT[engine.sync_engine] = pragmas
    return engine


# The pragmas each SQLite engine sets on its connections, for app/sqlite_thread.py's own.
_SQLITE_ON_CONNECT: "WeakKeyDictionary[Engine, Any]" = WeakKeyDictionary()


def sqlite_on_connect(engine: AsyncEngine) -> Any:
    """What `create_engine` runs on each new SQLite connection of `engine`, or None."""
    return _SQLITE_ON_CONNECT.get(engine.sync_engine)


def _sqlite_pragmas(busy_timeout_ms: int, synchronous: str) -> Any:
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"unsupported synchronous mode {synchronous!r}")

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL: readers never wait for the writer. synchronous=FULL (the default): a commit
        # survives power loss; group commit pays its fsync once a batch.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # A deleted message's bytes are overwritten, not left in free pages (see Deletion).
        cursor.execute("PRAGMA secure_delete=ON")
        # Statement journals in memory: a batch's multi-row INSERT keeps one, and past 64 KiB
        # (a few dozen pages: one index leaf per room of the batch, the search index's) SQLite
        # spills it to a temporary file created and unlinked once a batch (docs/performance.md).
        cursor.execute("PRAGMA temp_store=MEMORY")
        # Checkpoint the WAL every 10,000 pages (about 40 MB), not SQLite's 1,000: a page that
        # many batches change (a room's index leaf, the room counts, the search index's
        # structure) is copied back to the database once a checkpoint, so fewer checkpoints
        # copy fewer pages. 15-30% less CPU a commit of 20 rows (docs/performance.md).
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.close()

    return on_connect
