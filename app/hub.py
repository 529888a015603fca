"""This process's rooms: which connections are in which room, and the fan-out to them.

Promises of `deliver` (called by the broker, in id order per room):
- it never awaits: each connection gets a non-blocking push of a frame encoded once for the
  whole broadcast; a connection whose queue is full is closed with 1013 and the others go on;
- what a turn of the event loop delivered goes out once that turn is over: each connection
  pushed to is kicked once, and writes all its new frames at once if its socket takes them
  (no task per frame), else hands them to its sending task;
- a connection that joined before a message was delivered receives it (possibly held until its
  history snapshot is known, see `Connection.start`);
- a deletion reaches every `chat.v2.json` connection of the room after whatever was pushed to
  it before, the joining ones after their history (which may or may not hold the message):
  a client never keeps showing a message that was deleted after it joined.
"""

import asyncio
import logging
import time

from app.connection import AFTER_HISTORY, Connection
from app.frames import BroadcastFrames, deleted_frame
from app.messages import Deletion, Event
from app.metrics import FanoutProbe

log = logging.getLogger(__name__)

RESUME = 1012
RESUME_REASON = "service restart: reconnect with ?since="
PROBE_EVERY = 0.05  # s: enough samples for a histogram, too few to cost the fan-out anything


class Hub:
    def __init__(self, *, probe_fanout: bool = False) -> None:
        self._rooms: dict[str, dict[Connection, None]] = {}
        self.closing = False
        # Times one message's fan-out at a time, at most every PROBE_EVERY s (see FanoutProbe).
        self._probe: FanoutProbe | None = None
        self._probing = probe_fanout
        self._next_probe = 0.0
        # Connections with frames pushed by this turn's deliveries, kicked once at its end.
        self._pushed: dict[Connection, None] = {}
        self._kick_due = False

    @property
    def connections(self) -> int:
        return sum(len(members) for members in self._rooms.values())

    @property
    def queued_frames(self) -> int:
        return sum(conn.queued for members in self._rooms.values() for conn in members)

    @property
    def rooms(self) -> int:
        return len(self._rooms)

    def join(self, conn: Connection) -> None:
        self._rooms.setdefault(conn.room_id, {})[conn] = None

    def leave(self, conn: Connection) -> None:
        members = self._rooms.get(conn.room_id)
        if members is None:
            return
        members.pop(conn, None)
        if not members:
            del self._rooms[conn.room_id]

    def deliver(self, message: Event) -> None:
        members = self._rooms.get(message.room_id)
        if not members:
            return
        if type(message) is Deletion:
            self._deliver_deletion(message, members)
            return
        frames = BroadcastFrames(message)
        pushed = self._pushed
        sender = message.sender
        user = message.author_id  # with tokens, `own` is every connection of the same `sub`
        # No copy of the members: a push never joins or leaves (only the socket's route does,
        # between awaits), so the dict cannot change under this loop.
        for conn in members:
            json = conn.json
            if conn.token == sender:
                frame = frames.for_sender(json=json)
            elif json and user is not None and conn.author_id == user:
                frame = frames.for_same_user()  # plain text has no `own` but "You wrote"
            else:
                frame = frames.for_client(json=json)
            if conn.push(message.id, frame):
                pushed[conn] = None
        if self._probing:
            self._maybe_probe(message.id, members)
        if pushed:
            self._kick_at_end_of_turn()

    def _deliver_deletion(self, deletion: Deletion, members: dict[Connection, None]) -> None:
        frame = deleted_frame(deletion.id, deletion.room_id)
        for conn in members:
            # Above any history cutoff: a joiner whose replay holds the message is told too.
            if conn.v2 and conn.push(AFTER_HISTORY, frame):
                self._pushed[conn] = None
        if self._pushed:
            self._kick_at_end_of_turn()

    def _kick_at_end_of_turn(self) -> None:
        if not self._kick_due:
            self._kick_due = True
            asyncio.get_running_loop().call_soon(self._kick)

    def _kick(self) -> None:
        """Each connection pushed to since the last kick sends its frames, in one write."""
        self._kick_due = False
        pushed, self._pushed = self._pushed, {}
        for conn in pushed:
            conn.kick()

    def _maybe_probe(self, message_id: int, members: dict[Connection, None]) -> None:
        now = time.monotonic()
        if now < self._next_probe or not (self._probe is None or self._probe.finished(now)):
            return
        self._probe = probe = FanoutProbe(message_id, now)
        self._next_probe = now + PROBE_EVERY
        for conn in members:
            conn.watch(probe)

    def close_all(self, code: int, reason: str = "", *, flush: bool = True) -> list[Connection]:
        conns = [conn for members in self._rooms.values() for conn in members]
        for conn in conns:
            conn.close(code, reason, flush=flush)
        return conns

    async def shutdown(self, code: int, reason: str, grace: float) -> None:
        """Close every connection after its queued frames; clients that do not take them within
        `grace` seconds are closed at once."""
        self.closing = True
        conns = self.close_all(code, reason, flush=True)
        if not conns or await _all_closed(conns, grace):
            return
        slow = [conn for conn in conns if not conn.is_closed]
        log.warning(
            "%d client(s) did not read their last frames in time: closing now",
            len(slow),
            extra={"clients": len(slow), "code": code},
        )
        for conn in slow:
            conn.close(code, reason)
        await _all_closed(slow, 1.0)

    def lost(self, room_id: str | None = None) -> None:
        """Live messages may have been missed (the broker's link broke, or a hole in a room's
        feed could not be filled): close every client (of the room) with 1012 after its queued
        frames, so that it reconnects and resumes with `?since=`."""
        if room_id is None:
            conns = self.close_all(RESUME, RESUME_REASON, flush=True)
        else:
            conns = list(self._rooms.get(room_id, {}))
            for conn in conns:
                conn.close(RESUME, RESUME_REASON, flush=True)
        if conns:
            log.warning(
                "closed %d client(s)%s with 1012: live messages may have been missed",
                len(conns),
                "" if room_id is None else f" of room {room_id!r}",
                extra={"clients": len(conns), "code": 1012},
            )


async def _all_closed(conns: list[Connection], grace: float) -> bool:
    waits = [asyncio.ensure_future(conn.wait_closed()) for conn in conns]
    _, pending = await asyncio.wait(waits, timeout=grace)
    for waiter in pending:
        waiter.cancel()
    return not pending
