"""The single writer task: a queue of accepted messages, group commit, hand-off in id order.

Promises:
- durable before visible: a message is handed to `publish` only after its transaction committed;
- one order: batches are committed one after another and handed over in id order;
- group commit: everything queued while a commit runs goes into the next transaction, one
  multi-row INSERT ... RETURNING, so a fast sender is never held to one message per commit;
- a failed commit publishes nothing of its batch: each of its senders is told (`write_failed`),
  and their messages still waiting in the queue are dropped, so nothing after a lost message
  of theirs is shown either. The writer goes on with the next batch;
- exactly once per key: a send whose client key is already stored in its room (before, or
  earlier in the same batch) is not stored or published again; its sender alone gets the
  stored message as its own copy (`answer_retry`), on this process, never through the broker.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

from app import metrics
from app.messages import StoredMessage
from app.store import NewMessage, Store

log = logging.getLogger(__name__)

Publish = Callable[[list[StoredMessage]], Awaitable[None]]


class Sender(Protocol):
    token: str
    author: str | None
    author_id: str | None

    def write_failed(self) -> None: ...

    def answer_retry(self, message: StoredMessage) -> None: ...

    @property
    def failed(self) -> bool: ...


class Writer:
    def __init__(
        self, store: Store, publish: Publish, *, batch_max: int = 1000, queue_max: int = 10_000
    ) -> None:
        self._store = store
        self._publish = publish
        self._batch_max = batch_max
        self._queue: asyncio.Queue[tuple[NewMessage, Sender]] = asyncio.Queue(queue_max)
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._began = 0.0  # when the current batch's commit began (for its metrics)

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
        await self._queue.put((message, sender))

    async def flush(self) -> None:
        """Return once everything submitted so far has been committed (or failed) and handed on."""
        await self._queue.join()

    async def stop(self) -> None:
        """Commit everything queued, then end the task."""
        if self._task is None:
            return
        await self.flush()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._in_flight = len(batch)
            try:
                await self._commit([(m, s) for m, s in batch if not s.failed])
            finally:
                self._in_flight = 0
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[tuple[NewMessage, Sender]]) -> None:
        if not batch:
            return
        self._began = time.monotonic()
        try:
            # The store hands the batch on after its commit (and, on PostgreSQL, before it
            # unlocks the batch's rooms, so that processes publish a room in id order).
            written = await self._store.insert([m for m, _ in batch], then=self._hand_on)
        except Exception as exc:
            metrics.COMMIT_FAILURES.inc()
            senders = {id(s): s for _, s in batch}.values()
            log.error(
                "commit of %d message(s) failed, closing their %d sender(s) with 1011: %s",
                len(batch),
                len(senders),
                _one_line(exc),
                extra={"messages": len(batch), "senders": len(senders), "code": 1011},
            )
            for sender in senders:
                sender.write_failed()
            return
        for position, message in written.repeats:
            batch[position][1].answer_retry(message)

    async def _hand_on(self, stored: list[StoredMessage]) -> None:
        metrics.committed(len(stored), self._began, stored[0].created_at.timestamp())
        # Committed is committed: a fan-out failure must not read as a failed commit.
        try:
            await self._publish(stored)
        except Exception:
            log.exception("handing %d committed message(s) to the fan-out failed", len(stored))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
