"""SQLite's search index, kept up with the stored messages in batches (migration 0008).

FTS5 writes a segment of its own for every transaction that adds to it: fed inside each commit,
the index was half the pages and a third of the CPU of a small commit. So the index holds the
messages up to a mark (`messages_fts_state.indexed_through`), and `SearchIndexFollower` adds
the ones above it on the writer's thread, in one transaction a slice:

- in the background, once BATCH messages were stored since the last catch-up, or DELAY
  seconds after the first of them, whichever comes first (a slice costs a millisecond or two);
- before every search (`current`), so a search finds every message stored before it;
- at a clean stop, and after an import.

A crash loses nothing: the mark is in the database, and what is above it is indexed by the
next catch-up. Every writer keeps the rule through the triggers of 0008 (a message stored at
or below the mark is indexed at once; one deleted leaves the index only if it was in it).
"""

import asyncio
import logging
import sqlite3
from functools import partial

from app.sqlite_thread import SqliteThread

log = logging.getLogger(__name__)

# Messages stored before a background catch-up starts, and the longest it waits for them.
BATCH = 500
DELAY = 0.2
# The most messages one catch-up transaction adds: a backlog (a restart after a crash, a bulk
# load) is indexed in slices, with the writer's own commits in between.
SLICE = 2000
# No bound: the import's batches (store_transfer.py) index everything above the mark.
WHOLE_BACKLOG = 1 << 62


def catch_up(most: int, db: sqlite3.Connection) -> tuple[int, int]:
    """In a transaction: index the stored messages above the mark, at most `most` of them
    (by id range); the mark after, and the newest stored id."""
    (through,) = db.execute(
        "SELECT indexed_through FROM messages_fts_state WHERE id = 1"
    ).fetchone()
    (newest,) = db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()
    if newest <= through:
        return through, newest
    upto = min(newest, through + most)
    db.execute(
        "INSERT INTO messages_fts(rowid, text) SELECT id, text FROM messages "
        "WHERE id > ? AND id <= ?",
        (through, upto),
    )
    db.execute("UPDATE messages_fts_state SET indexed_through = ? WHERE id = 1", (upto,))
    return upto, newest


async def catch_up_all(thread: SqliteThread) -> None:
    """Index every message stored before this call, a slice a transaction."""
    through, target = await thread.transaction(partial(catch_up, SLICE))
    while through < target:
        through, _ = await thread.transaction(partial(catch_up, SLICE))


class SearchIndexFollower:
    """Counts what the writer stores and catches the index up in the background."""

    def __init__(self, thread: SqliteThread) -> None:
        self._thread = thread
        self._behind = 0  # messages stored since the last background catch-up began
        self._timer: asyncio.TimerHandle | None = None
        self._running: asyncio.Task[None] | None = None
        # Whether the index held every stored message when a catch-up last ended, with nothing
        # stored since (unknown at the start: a crash may have left messages above the mark).
        self._current = False
        self._writes = 0  # batches stored, to tell whether any came during a catch-up
        self._closed = False

    def stored(self, count: int) -> None:
        """The writer stored `count` messages (on the event loop, after each batch)."""
        if not count:
            return
        self._current = False
        self._writes += 1
        self._behind += count
        if self._behind >= BATCH:
            self._start()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(DELAY, self._start)

    async def current(self) -> None:
        """Return once every message stored before the call is in the index: at once when
        nothing was stored since the last catch-up, else after one on the writer's thread."""
        if self._current:
            return
        await self._catch_up_all()

    async def _catch_up_all(self) -> None:
        writes = self._writes
        await catch_up_all(self._thread)
        self._current = self._writes == writes

    async def close(self) -> None:
        """At a clean stop (the writer has stopped): the background catch-up ended, none to
        come, and the index current."""
        self._closed = True
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.current()

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._running is not None:  # the next one starts when it is done
            return
        self._behind = 0
        self._running = asyncio.get_running_loop().create_task(self._catch_up())

    async def _catch_up(self) -> None:
        try:
            await self._catch_up_all()
        except Exception:
            # Nothing is lost: the messages stay above the mark for the next catch-up, and a
            # search catches up itself (and reports its own error).
            log.exception("catching the search index up failed")
        finally:
            self._running = None
        if self._closed:
            return
        if self._behind >= BATCH:
            self._start()
        elif self._behind and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(DELAY, self._start)
