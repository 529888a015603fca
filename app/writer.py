"""The single writer task: a queue of accepted messages, group commit, hand-off in id order.

Promises:
- durable before visible: a message is handed to `publish` only after its transaction committed;
- one order: batches are committed one after another and handed over in id order;
- group commit: what is queued while a commit runs goes into the next transaction, one
  multi-row INSERT, so a fast sender is never held to one message per commit (all of it up to
  64 messages, else a multiple of 64 up to the cap, so that few statement texts are compiled);
  the next commit starts once the frames of the last batch were written (one turn of the loop
  after it);
- one message that cannot be stored fails only itself: a batch whose commit fails is retried
  in halves, down to single messages, so only the messages that really cannot be stored are
  lost. A lost message publishes nothing; its sender is told (`write_failed`) and its
  messages still waiting are dropped, so nothing after a lost message of theirs is shown
  either. The writer goes on with the next batch;
- a room locked elsewhere fails only its own messages: on PostgreSQL a room's lock is waited
  for at most ROOM_LOCK_WAIT (a stalled process elsewhere holds it), then that room's messages
  fail (1011 to their senders) and the batch's other rooms are committed;
- exactly once per key: a send whose client key is already stored in its room (before, or
  earlier in the same batch) is not stored or published again; its sender alone gets the
  stored message as its own copy (`answer_retry`), on this process, never through the broker;
- a deletion (`delete`) takes the room's lock as a batch does: it is committed and published
  after every batch of the room committed before it, so no client, on any process, receives
  a message after its deletion.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from app import metrics
from app.messages import Deletion, Event, StoredMessage
from app.store import ROOM_LOCK_WAIT, NewMessage, Store

log = logging.getLogger(__name__)

# The committed messages in id order (or a deletion), and (when the writer is `chained`) each
# of their rooms' newest id before them, so that a receiver can tell a hole from a duplicate.
Publish = Callable[[list[Event], Mapping[str, int]], Awaitable[None]]


class RoomBusy(Exception):
    """The room's lock is held elsewhere for over ROOM_LOCK_WAIT: nothing was done."""


class Sender(Protocol):
    token: str
    author: str | None
    author_id: str | None

    def write_failed(self) -> None: ...

    def answer_retry(self, message: StoredMessage) -> None: ...

    @property
    def failed(self) -> bool: ...


Batch = list[tuple[NewMessage, "Sender"]]

# A batch's INSERT is one statement whose text depends on its number of rows, and the database
# compiles each new text: SQLite spends a quarter of a 1,000-row commit's CPU on it, and keeps
# the 128 latest in its cache (up to 0.75 KB a row each). Batches of more than SHAPE_STEP
# messages are cut to a multiple of it, so that the few statements they need stay compiled
# (docs/performance.md, issue 16's seventh pass).
SHAPE_STEP = 64


def batch_size(available: int) -> int:
    """How many of `available` queued messages the next batch takes: all of them up to
    SHAPE_STEP, else the largest multiple of SHAPE_STEP."""
    return available if available <= SHAPE_STEP else available - available % SHAPE_STEP


class Writer:
    def __init__(
        self,
        store: Store,
        publish: Publish,
        *,
        batch_max: int = 1000,
        queue_max: int = 10_000,
        chained: bool = False,
    ) -> None:
        self._store = store
        self._chained = chained
        self._publish = publish
        self._batch_max = batch_max
        self._queue: asyncio.Queue[tuple[NewMessage, Sender]] = asyncio.Queue(queue_max)
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0

    @property
    def queued(self) -> int:
        """Messages accepted but not yet committed and handed over."""
        return self._queue.qsize() + self._in_flight

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="chat-writer")

    async def submit(
        self, room_id: str, text: str, sender: Sender, *, key: str | None = None
    ) -> None:
        """Queue a message. Waits only when the queue is full, holding back just this sender."""
        message = NewMessage(
            room_id, text, datetime.now(UTC), sender.token, sender.author, sender.author_id, key
        )
        queue = self._queue
        if queue.full():
            await queue.put((message, sender))
        else:
            queue.put_nowait((message, sender))  # the usual case: no coroutine to run

    async def flush(self) -> None:
        """Return once everything submitted so far has been committed (or failed) and handed on."""
        await self._queue.join()

    async def delete(self, room_id: str, message_id: int) -> bool:
        """Delete a stored message and tell the room's clients; False if it is not stored.

        Under the room's lock, like a batch: the room's messages committed before are published
        before the deletion, so the deletion follows the message it deletes everywhere.
        """
        async with self._store.locked([room_id]) as tx:
            if tx.refused:
                raise RoomBusy(room_id)
            previous = await tx.previous_ids() if self._chained else {}
            deleted = bool(await tx.delete([message_id]))
            await tx.commit()
            if deleted:
                metrics.DELETED.inc()
                await self._publish_safely([Deletion(message_id, room_id)], previous)
        return deleted

    async def stop(self, grace: float | None = None) -> None:
        """Commit everything queued (waiting at most `grace` s for it), then end the task.
        Messages not committed by then were never acknowledged: nobody saw them."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self.flush(), grace)
        except TimeoutError:
            log.warning("stopping with %d message(s) not committed", self.queued)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            self._in_flight = len(batch)
            try:
                await self._commit(batch)  # without failed senders' (_store_in_parts)
            finally:
                self._in_flight = 0
                for _ in batch:
                    self._queue.task_done()
            await self._turn()

    async def _turn(self) -> None:
        """One turn of the event loop before the next commit: the hub writes the frames of the
        batch just handed on at the end of this turn, so they go to the sockets before the
        next commit's thread competes with them for the core (paced many rooms p50 a fifth to
        a quarter lower on one core; docs/performance.md, sixth pass)."""
        await asyncio.sleep(0)

    async def _next_batch(self) -> Batch:
        """The next batch: the first message to come and everything queued behind it."""
        return self._gathered([await self._queue.get()])

    def _gathered(self, batch: Batch) -> Batch:
        """`batch` with what is queued behind it, up to the batch cap, in one of few sizes
        (`batch_size`); what is left waits for the next batch, which starts at once."""
        size = batch_size(min(len(batch) + self._queue.qsize(), self._batch_max))
        while len(batch) < size:
            batch.append(self._queue.get_nowait())
        return batch

    async def _commit(self, batch: list[tuple[NewMessage, Sender]]) -> None:
        lost = await self._store_in_parts(batch)
        if not lost:
            return
        metrics.COMMIT_FAILURES.inc()
        messages, error = sum(len(part) for part, _ in lost), lost[0][1]
        senders = {id(s): s for part, _ in lost for _, s in part}
        log.error(
            "commit of %d message(s) failed, closing their %d sender(s) with 1011: %s",
            messages,
            len(senders),
            _one_line(error),
            extra={"messages": messages, "senders": len(senders), "code": 1011},
        )

    async def _store_in_parts(self, batch: Batch) -> list[tuple[Batch, BaseException]]:
        """Commit and hand on `batch`; if that fails, its halves, down to single messages.

        Returns the parts that could not be stored, whose senders were told at once: a later
        part holds no message of theirs. A failure of the database itself (its connection,
        its disk) fails the whole part: every smaller part would fail the same way.
        """
        batch = [(m, s) for m, s in batch if not s.failed]
        if not batch:
            return []
        try:
            await self._commit_and_hand_on(batch)
            return []
        except Exception as exc:
            if len(batch) == 1 or not _about_the_data(exc):
                for _, sender in batch:
                    sender.write_failed()
                return [(batch, exc)]
        half = len(batch) // 2
        return await self._store_in_parts(batch[:half]) + await self._store_in_parts(batch[half:])

    async def _commit_and_hand_on(self, batch: Batch) -> None:
        """The order rule, in one place: lock the rooms, commit, publish, then unlock.

        A room's lock is held until its messages were handed to the broker, so the next batch
        of that room, in any process, is committed and published after this one.
        """
        committed = False
        began = time.monotonic()
        try:
            async with self._store.locked(m.room_id for m, _ in batch) as tx:
                if tx.refused:
                    batch = self._refuse(batch, tx.refused)
                    if not batch:
                        return
                previous = await tx.previous_ids() if self._chained else {}
                written = await tx.insert([m for m, _ in batch])
                await tx.commit()
                committed = True
                if written.stored:
                    await self._hand_on(written.stored, previous, began)
        except Exception:
            if not committed:
                raise
            log.exception("releasing the rooms of a committed batch failed")
        for position, message in written.repeats:
            batch[position][1].answer_retry(message)

    def _refuse(self, batch: Batch, rooms: frozenset[str]) -> Batch:
        """Fail the messages of rooms whose lock another process holds; the rest goes on."""
        refused = [(m, s) for m, s in batch if m.room_id in rooms]
        senders = {id(s): s for _, s in refused}
        log.error(
            "room(s) %s locked elsewhere for over %.0f s: %d message(s) not stored, closing"
            " their %d sender(s) with 1011",
            ", ".join(repr(r) for r in sorted(rooms)),
            ROOM_LOCK_WAIT,
            len(refused),
            len(senders),
        )
        for sender in senders.values():
            sender.write_failed()
        return [(m, s) for m, s in batch if m.room_id not in rooms]

    async def _hand_on(
        self, stored: list[StoredMessage], previous: Mapping[str, int], began: float
    ) -> None:
        metrics.committed(len(stored), began, stored[0].created_at.timestamp())
        await self._publish_safely(stored, previous)

    async def _publish_safely(self, events: list[Event], previous: Mapping[str, int]) -> None:
        # Committed is committed: a fan-out failure must not read as a failed commit.
        try:
            await self._publish(events, previous)
        except Exception:
            log.exception("handing %d committed event(s) to the fan-out failed", len(events))


def _about_the_data(exc: BaseException) -> bool:
    """Whether a failed write may be due to some of its messages rather than the database."""
    if isinstance(exc, OSError | TimeoutError | OperationalError | InterfaceError):
        return False
    return not (isinstance(exc, DBAPIError) and exc.connection_invalidated)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
