"""A room's feed in id order with its holes filled: no message N+1 is delivered before N.

Every published message carries its room's previous id (`prev`, read by the writer under the
room's lock). `Sequencer.receive` delivers each room's messages in id order, once each:
- a message at or below the last one delivered is a duplicate (a publish retried, or one
  that timed out and ran later): dropped;
- a message whose `prev` is above the last one delivered follows a hole (a publish lost, a
  process whose publishes were delayed): the missing messages are read from the database and
  delivered first, in order, and what arrives for that room meanwhile waits behind them;
- a hole that cannot be filled (the database does not answer within FILL_TIMEOUT, or it is
  longer than FILL_CAP) closes that room's local clients with 1012 (`lost(room)`): they
  resume with `?since=`, and the room's feed starts afresh.
A deletion carries its room's newest id when it was committed (`prev`, read under the same
lock): it is delivered once every message up to that id was, so a client never receives a
message after its deletion. It takes no id: a deletion is never taken for a duplicate.
After `reset(room)` (a new subscription, a new link) the first message is delivered as it is:
what was committed before it is in the history snapshot of whoever joined since.
"""

import asyncio
import logging

from app.broker.base import Deliver, Fill, Lost
from app.messages import Deletion, Event

log = logging.getLogger(__name__)

FILL_TIMEOUT = 5.0
FILL_CAP = 1000

Waiting = list[tuple[Event, int]]


class Sequencer:
    def __init__(self, deliver: Deliver, lost: Lost, fill: Fill) -> None:
        self._deliver = deliver
        self._lost = lost
        self._fill = fill
        self._last: dict[str, int] = {}  # room -> the last id delivered
        self._waiting: dict[str, Waiting] = {}  # rooms being filled -> what arrived meanwhile
        self._fills: set[asyncio.Task[None]] = set()

    def receive(self, event: Event, prev: int) -> None:
        waiting = self._waiting.get(event.room_id)
        if waiting is not None:
            waiting.append((event, prev))
        else:
            self._accept(event, prev)

    def reset(self, room_id: str | None = None) -> None:
        """Forget what was delivered (for one room or all): a new feed starts."""
        if room_id is None:
            self._last.clear()
            self._waiting.clear()
        else:
            self._last.pop(room_id, None)
            self._waiting.pop(room_id, None)

    async def close(self) -> None:
        for task in self._fills:
            task.cancel()
        await asyncio.gather(*self._fills, return_exceptions=True)

    def _accept(self, event: Event, prev: int) -> bool:
        """Deliver, drop or start a fill; False when a fill started (the room now waits)."""
        room = event.room_id
        last = self._last.get(room)
        deletion = type(event) is Deletion
        if last is not None:
            if not deletion and event.id <= last:
                return True  # a duplicate
            if prev > last:
                self._waiting[room] = [(event, prev)]
                task = asyncio.create_task(self._fill_hole(room, last, prev), name="chat-fill")
                self._fills.add(task)
                task.add_done_callback(self._fills.discard)
                return False
        if not deletion:
            self._last[room] = event.id
        self._deliver(event)
        return True

    async def _fill_hole(self, room: str, last: int, prev: int) -> None:
        try:
            missing = await asyncio.wait_for(self._fill(room, last, prev, FILL_CAP), FILL_TIMEOUT)
            if len(missing) >= FILL_CAP:
                raise ValueError(f"over {FILL_CAP} messages missing")
        except Exception as exc:
            if self._waiting.pop(room, None) is None:
                return  # reset meanwhile
            self._last.pop(room, None)
            log.warning(
                "room %r: messages %d to %d missed by the live feed could not be read (%s)",
                room,
                last + 1,
                prev,
                exc,
            )
            self._lost(room)
            return
        waiting = self._waiting.pop(room, None)
        if waiting is None:
            return  # reset meanwhile: a new feed started
        log.info("room %r: filled a hole of %d message(s) from the database", room, len(missing))
        for message in missing:
            self._deliver(message)
        # Read through `prev`: a message of the hole that arrives late (or was deleted since
        # and is missing from the read) is a duplicate now.
        self._last[room] = prev
        for n, (event, event_prev) in enumerate(waiting):
            if not self._accept(event, event_prev):
                self._waiting[room].extend(waiting[n + 1 :])
                return
