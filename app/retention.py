"""Retention: messages older than CHAT_RETENTION_DAYS are deleted, a small batch at a time.

Promises:
- a message past the age is deleted within one interval (CHAT_RETENTION_INTERVAL, at most an
  hour) of passing it, as a deletion is (row, room count, search index), without `deleted`
  frames: nobody is watching messages that old;
- live writes never wait long behind it: each batch is one short transaction of at most BATCH
  messages (a few ms on SQLite), and the task yields between batches, so a live commit waits
  behind at most one batch (worst live echo about 50 ms while 100,000 messages go, README
  "Deleting messages"; 500 a batch gave 59 ms);
- on PostgreSQL one process prunes at a time (`Store.exclusive`); the others skip the pass;
- a pass that fails is logged and tried again at the next interval; it never stops the server.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from app import metrics
from app.store import Store

log = logging.getLogger(__name__)

BATCH = 250
PAUSE = 0.002  # s between batches: the writer's turn (in the server, its thread takes turns)
# From another process (`python -m app prune` beside a server on SQLite) the server's writer
# waits in SQLite's busy handler, which polls the lock at growing intervals (up to 100 ms):
# longer pauses let it in.
PAUSE_BESIDE_A_SERVER = 0.05
JOB = "chat:retention"  # the name of PostgreSQL's lock (no room id holds a `:`)


async def prune(
    store: Store,
    before: datetime,
    *,
    batch: int = BATCH,
    pause: float = PAUSE,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Delete every message created before `before`, oldest first, `batch` at a time; how
    many went. `progress` hears the running total after each batch."""
    total = 0
    while True:
        gone = await store.delete_expired(before, batch)
        total += gone
        if gone and progress is not None:
            progress(total)
        if gone < batch:
            return total
        await asyncio.sleep(pause)


class Retention:
    """The server's background task: a pass every `interval` seconds."""

    def __init__(self, store: Store, *, days: int, interval: float) -> None:
        self._store = store
        self._age = timedelta(days=days)
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="chat-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run_once(self) -> int:
        """One pass now: how many messages it deleted (0 when another process is at it)."""
        async with self._store.exclusive(JOB) as mine:
            if not mine:
                return 0
            before = datetime.now(UTC) - self._age
            deleted = await prune(self._store, before)
        if deleted:
            metrics.EXPIRED.inc(deleted)
            log.info(
                "retention: deleted %d message(s) older than %d day(s)",
                deleted,
                self._age.days,
                extra={"messages": deleted},
            )
        return deleted

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)  # not at once: the start has enough to do
            try:
                await self.run_once()
            except Exception:
                log.exception("retention pass failed; trying again in %.0f s", self._interval)
