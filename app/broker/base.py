"""The broker moves committed messages, and deletions, to every process that serves their room.

It knows nothing of sockets: each process's hub receives what its broker delivers.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from app.messages import Event, StoredMessage

Deliver = Callable[[Event], None]
# Called when messages may have been missed (the link to other processes broke), for every
# room (None) or one: those local connections can no longer be promised "no gap", and should
# resume with `?since=`.
Lost = Callable[[str | None], None]
# Reads a room's committed messages with after < id <= through, oldest first (at most
# `limit`): how a receiver fills a hole in what it was delivered.
Fill = Callable[[str, int, int, int], Awaitable[list[StoredMessage]]]


class Broker(Protocol):
    """Promises, per room: messages reach `deliver` in id order, each once, only after commit;
    a deletion reaches it after the deleted message (and after every message committed before
    the deletion), never before.

    `subscribe(room)` returns once messages published from then on will be delivered, which is
    what lets a joiner subscribe first and read its history snapshot second without a gap.
    Calls are counted: a room stays subscribed until every `subscribe` had its `unsubscribe`.
    """

    # Whether `publish` needs each room's newest committed id before the events (the writer
    # reads it under the room's lock).
    chained: bool

    async def start(self, deliver: Deliver, lost: Lost, fill: Fill) -> None: ...

    async def publish(self, events: Sequence[Event], previous: Mapping[str, int]) -> None: ...

    async def subscribe(self, room_id: str) -> None: ...

    async def unsubscribe(self, room_id: str) -> None: ...

    async def close(self) -> None: ...
