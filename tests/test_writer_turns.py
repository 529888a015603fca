"""The writer's turn (app/writer.py), unit level: the frames of a batch go out before the next
commit starts. Through a real server, every message's delivery, order and durability are in the
protocol tests; this is about what runs first on the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager

import pytest

from app.messages import Event, StoredMessage
from app.store import NewMessage, Written
from app.writer import Writer, batch_size

pytestmark = pytest.mark.anyio


class _Sender:
    token = "sender"
    author: str | None = None
    author_id: str | None = None
    failed = False

    def write_failed(self) -> None:
        raise AssertionError("no write fails here")

    def answer_retry(self, message: StoredMessage) -> None:
        raise AssertionError("no key repeats here")


class _Store:
    """Records each commit; a commit takes until `release` is set, as the database's thread
    would (the writer awaits it, the loop goes on)."""

    refused: frozenset[str] = frozenset()  # SQLite's transactions refuse no room

    def __init__(self, events: list[str]) -> None:
        self._events = events
        self._next_id = 1
        self.release = asyncio.Event()

    @asynccontextmanager
    async def locked(self, room_ids: Iterable[str]) -> AsyncIterator[_Store]:
        yield self

    async def insert(self, batch: Sequence[NewMessage]) -> Written:
        self._events.append("commit " + ",".join(m.text for m in batch))
        await self.release.wait()
        stored = []
        for m in batch:
            stored.append(StoredMessage(self._next_id, m.room_id, m.text, m.created_at))
            self._next_id += 1
        return Written(stored, [])

    async def commit(self) -> None:
        return None


async def test_the_next_commit_starts_after_the_frames_of_the_last_batch_went_out() -> None:
    """The hub writes a batch's frames at the end of the loop's turn in which it was handed
    on (it kicks each connection once, `call_soon`). The writer lets that turn end before it
    starts the next commit, whose thread would otherwise compete with those writes for the
    server's core: on the code before, 'commit b' came before 'frames a'."""
    events: list[str] = []
    store = _Store(events)
    loop = asyncio.get_running_loop()

    async def publish(published: list[Event], previous: Mapping[str, int]) -> None:
        texts = ",".join(e.text for e in published if isinstance(e, StoredMessage))
        loop.call_soon(events.append, f"frames {texts}")  # as Hub.deliver kicks

    writer = Writer(store, publish)  # type: ignore[arg-type]
    writer.start()
    sender = _Sender()
    try:
        await writer.submit("r", "a", sender)
        while events != ["commit a"]:
            await asyncio.sleep(0)
        await writer.submit("r", "b", sender)  # queued while "a" is being committed
        store.release.set()
        await asyncio.wait_for(writer.flush(), 5)
        for _ in range(3):
            await asyncio.sleep(0)  # the last batch's frames
        assert events == ["commit a", "frames a", "commit b", "frames b"]
    finally:
        await writer.stop(1)


def test_batches_over_the_shape_step_are_cut_to_a_multiple_of_it() -> None:
    """A batch's INSERT is compiled once per number of rows: above SHAPE_STEP a batch takes a
    multiple of it, so that the statements stay few and cached."""
    assert [batch_size(n) for n in (1, 63, 64, 65, 127, 128, 129, 1000)] == [
        1, 63, 64, 64, 64, 128, 128, 960,
    ]  # fmt: skip


async def test_what_a_cut_batch_leaves_goes_into_the_next_one_in_order() -> None:
    """150 messages queued behind a commit: the next batches take 128 of them, then the 22
    left, in the order they came; none lost, none twice."""
    events: list[str] = []
    store = _Store(events)
    published: list[str] = []

    async def publish(events_: list[Event], previous: Mapping[str, int]) -> None:
        published.extend(e.text for e in events_ if isinstance(e, StoredMessage))

    writer = Writer(store, publish)  # type: ignore[arg-type]
    writer.start()
    sender = _Sender()
    texts = [str(i) for i in range(151)]
    try:
        await writer.submit("r", texts[0], sender)
        while not events:
            await asyncio.sleep(0)
        for text in texts[1:]:  # queued while the first commit waits
            await writer.submit("r", text, sender)
        store.release.set()
        await writer.flush()
    finally:
        await writer.stop()
    assert [len(e.split(" ", 1)[1].split(",")) for e in events] == [1, 128, 22]
    assert published == texts
