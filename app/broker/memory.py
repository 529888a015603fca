"""In-process fan-out: one server process serves every connection of a room."""

from collections.abc import Mapping, Sequence

from app.broker.base import Deliver, Fill, Lost
from app.messages import Event


class MemoryBroker:
    """Delivers synchronously inside `publish`, so order and exactly-once come for free."""

    chained = False

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver, lost: Lost, fill: Fill) -> None:
        self._deliver = deliver

    async def publish(self, events: Sequence[Event], previous: Mapping[str, int]) -> None:
        deliver = self._deliver
        if deliver is None:
            return
        for event in events:
            deliver(event)

    async def subscribe(self, room_id: str) -> None:
        return None

    async def unsubscribe(self, room_id: str) -> None:
        return None

    async def close(self) -> None:
        self._deliver = None
