"""One server process per SQLite file.

Each server process has its own fan-out: two processes on one SQLite file would store into
one history while their clients silently never see each other's messages. So a server process
holds an exclusive lock (`flock`) on `<database>.lock` for its whole life, and a second one
refuses to start. The kernel drops the lock when the process ends, however it ends.
"""

import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url

from app.db import is_sqlite


class AlreadyServed(RuntimeError):
    pass


_held: dict[Path, int] = {}  # lock file -> its open descriptor, kept for the process's life


def lock_path(database_url: str) -> Path | None:
    """The lock file of a SQLite database URL; None for other databases and in-memory ones."""
    if not is_sqlite(database_url):
        return None
    database = make_url(database_url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(os.path.realpath(database)).with_name(Path(database).name + ".lock")


def claim(database_url: str) -> None:
    """Make this process the one server of its SQLite file; AlreadyServed if another is."""
    path = lock_path(database_url)
    if path is None or path in _held:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlreadyServed(
            f"another server process is serving the SQLite database {path.with_suffix('')}: "
            "one process per SQLite file (its clients would not see this one's); for several "
            "processes use PostgreSQL (CHAT_DATABASE_URL=postgresql+asyncpg://...) and Redis "
            "(CHAT_REDIS_URL)"
        ) from None
    _held[path] = fd
