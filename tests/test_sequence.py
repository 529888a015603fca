"""app/broker/sequence.py on its own: deletions travel in order with a room's messages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from app.broker.sequence import Sequencer
from app.messages import Deletion, Event, StoredMessage

pytestmark = pytest.mark.anyio

NOW = datetime.now(UTC)


def message(i: int, room: str = "r") -> StoredMessage:
    return StoredMessage(i, room, f"m{i}", NOW)


def sequencer(stored: list[StoredMessage]) -> tuple[Sequencer, list[Event], list[str | None]]:
    delivered: list[Event] = []
    lost: list[str | None] = []

    async def fill(room: str, after: int, through: int, limit: int) -> list[StoredMessage]:
        return [m for m in stored if m.room_id == room and after < m.id <= through][:limit]

    return Sequencer(delivered.append, lost.append, fill), delivered, lost


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_deletion_in_order_is_delivered_at_once() -> None:
    seq, delivered, _ = sequencer([])
    seq.receive(message(1), 0)
    seq.receive(Deletion(1, "r"), 1)
    seq.receive(Deletion(1, "r"), 1)  # a publish retried: harmless to the client
    seq.receive(message(2), 1)
    assert delivered == [message(1), Deletion(1, "r"), Deletion(1, "r"), message(2)]


async def test_a_deletion_after_a_hole_waits_for_the_missing_messages() -> None:
    # Messages 2 and 3 were published by another process and are late; 3 was deleted since.
    seq, delivered, lost = sequencer([message(2)])
    seq.receive(message(1), 0)
    seq.receive(Deletion(3, "r"), 3)
    seq.receive(message(4), 3)
    await settle()
    assert delivered == [message(1), message(2), Deletion(3, "r"), message(4)]
    # The late publishes arrive now: the deleted message must not come back.
    seq.receive(message(2), 1)
    seq.receive(message(3), 2)
    assert delivered == [message(1), message(2), Deletion(3, "r"), message(4)]
    assert lost == []


async def test_a_deletion_first_after_a_reset_is_delivered() -> None:
    seq, delivered, _ = sequencer([])
    seq.receive(Deletion(5, "r"), 9)
    seq.receive(message(10), 9)
    assert delivered == [Deletion(5, "r"), message(10)]
