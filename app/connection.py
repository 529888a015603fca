"""One client's outbound side: a bounded queue of frames and the task that drains it.

Promises:
- `push` never waits: it appends a shared, pre-encoded frame, or, when `limit` frames or
  `max_bytes` bytes are already waiting, drops the queue and closes the client with 1013 (too
  slow to read);
- what a client that stops reading makes the server hold is bounded in bytes: its queue (at
  most `max_bytes`) and at most one chunk beyond the transport's high-water mark, since the
  queue goes to the socket a chunk at a time, each when the socket takes more. The history
  is sent the same way and is not counted: a joiner's replay never makes it too slow;
- frames go out in the order pushed; while joining, frames are held until the history snapshot
  is known, then those at or below its cutoff id are skipped (no gap, no duplicate);
- a close asked with `flush=True` is sent after the frames already queued; without, at once.

An idle connection holds no task. Where the server offers `SEND_NOW` (`python -m app` does),
pushed frames are written by `kick()` at once, in one write, when the socket takes them: a
client that keeps up costs no task and no await per frame. Otherwise, and while the socket
holds writes back, a task sends them and ends once the queue is empty again (idle sockets are
most sockets, and each task costs kilobytes).

Where the server offers the ASGI extension `SEND_MANY` (`python -m app` does), the queued
frames of a chunk go to the socket in one send, and so does the join's history.
"""

import asyncio
import contextlib
import itertools
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator

from app import metrics
from app.frames import Frame, own_copy_frame
from app.messages import StoredMessage

log = logging.getLogger(__name__)
_TALLY = metrics.TALLY

SendFrame = Callable[[Frame], Awaitable[None]]
SendClose = Callable[[int, str], Awaitable[None]]

TOO_SLOW = 1013
# How much of a connection's queue goes to the socket in one write.
CHUNK_BYTES = 256 * 1024
# An ASGI extension of app.protocol: a "websocket.send" with "texts" sends them all at once.
SEND_MANY = "chat.websocket.send_many"
# Another: `scope["extensions"][SEND_NOW]["send_now"](frames) -> bool` writes at once if it can.
SEND_NOW = "chat.websocket.send_now"
SendNow = Callable[[list[Frame]], bool]
# Above every message id: a frame pushed with it is never taken for part of the history.
AFTER_HISTORY = 1 << 63
_tokens = itertools.count(1)
_process = os.urandom(4).hex()


class Connection:
    __slots__ = (
        "_bytes",
        "_closed",
        "_cutoff",
        "_failed",
        "_frames",
        "_hurried",
        "_limit",
        "_max_bytes",
        "_probe",
        "_send",
        "_send_close",
        "_send_many",
        "_send_now",
        "_sending",
        "_started",
        "_task",
        "author",
        "author_id",
        "close_code",
        "close_reason",
        "is_closed",
        "json",
        "room_id",
        "token",
        "v2",
    )

    def __init__(
        self,
        room_id: str,
        send: SendFrame,
        close: SendClose,
        *,
        json: bool,
        limit: int,
        max_bytes: int = 4 * 1024 * 1024,
        send_many: bool = False,
        send_now: SendNow | None = None,
    ) -> None:
        self.room_id = room_id
        self.json = json
        self.v2 = False  # `chat.v2.json`: it is told of deletions (set by the socket route)
        self._send_many = send_many
        self._send_now = send_now
        # Unique across processes: a message's sender token travels through the broker.
        self.token = f"{_process}-{next(_tokens)}"
        # Who this client is: the author of what it sends (set by the socket route).
        self.author: str | None = None
        self.author_id: str | None = None
        self._send = send
        self._send_close = close
        self._limit = limit
        self._max_bytes = max_bytes
        self._bytes = 0  # of the frames queued, and of those being sent
        # Made by a push and dropped once drained: an empty deque is ~600 bytes, on every
        # idle connection.
        self._frames: deque[tuple[int, Frame]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = False  # the history snapshot is known
        self._sending = False
        self._cutoff = 0
        self._failed = False
        self._hurried = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.is_closed = False
        self._closed: asyncio.Future[None] | None = None  # made when someone waits
        self._probe: metrics.FanoutProbe | None = None

    @property
    def queued(self) -> int:
        return len(self._frames) if self._frames is not None else 0

    @property
    def failed(self) -> bool:
        return self._failed

    def push(self, message_id: int, frame: Frame) -> bool:
        """Queue a frame. True when it waits for `kick()`, which the caller owes once it has
        pushed the frames it has (a fan-out kicks each connection once per turn)."""
        if self.close_code is not None:
            return False
        text: str = frame["text"]  # frame_bytes, inline: this runs for every frame of a fan-out
        size = len(text) if text.isascii() else 4 * len(text)
        if self._frames is None:
            self._frames = deque()
        if self._bytes and (
            len(self._frames) >= self._limit or self._bytes + size > self._max_bytes
        ):
            log.warning(
                "closing a client of room %r with 1013: it stopped reading",
                self.room_id,
                extra={"room": self.room_id, "code": TOO_SLOW},
            )
            self.close(TOO_SLOW, "too slow to read")
            return False
        self._frames.append((message_id, frame))
        self._bytes += size
        if not self._started or (self._task is not None and not self._task.done()):
            return False  # held until the join's history is known, or a task is sending
        if self._send_now is not None:
            return True
        self._task = asyncio.create_task(self._run([]), name=f"send-{self.token}")
        return False

    def kick(self) -> None:
        """Send what `push` queued: written at once if the socket takes it (no task, one
        write), else by a task that waits for the socket. Nothing to do if a task is sending
        (it sends these too, in order) or if the queue is over a chunk (the task sends it a
        chunk at a time, as the socket takes them)."""
        frames = self._frames
        if not frames or (self._task is not None and not self._task.done()):
            return
        if self._send_now is not None and self.close_code is None and self._bytes <= CHUNK_BYTES:
            due = [f for i, f in frames if i > self._cutoff]
            if not due or self._send_now(due):
                self._frames = None
                self._bytes = 0
                _TALLY.frames_sent += len(due)
                if self._probe is not None:
                    self._probe_passed(frames[-1][0])
                return
        self._task = asyncio.create_task(self._run([]), name=f"send-{self.token}")

    def start(self, history: Iterable[Frame], cutoff: int) -> None:
        """Send the history, then queued frames above `cutoff`, then live frames."""
        if self._task is not None:
            return  # closed while joining
        self._started = True
        self._cutoff = cutoff
        frames = list(history)
        if self._send_many and frames:
            frames = [_many(f["text"] for f in chunk) for chunk in _chunks(frames)]
        self._task = asyncio.create_task(self._run(frames), name=f"send-{self.token}")

    def answer_retry(self, message: StoredMessage) -> None:
        """A send of a key already stored: this client alone gets the stored message again.

        Its id is older than the history's cutoff when the original came before this
        connection, so it is queued as if above any cutoff.
        """
        if self.push(AFTER_HISTORY, own_copy_frame(message, json=self.json)):
            self.kick()

    def write_failed(self) -> None:
        """The writer could not commit a message of this client's: it was never shown."""
        self._failed = True
        self.close(1011, "message could not be stored")

    def close(self, code: int, reason: str = "", *, flush: bool = False) -> None:
        """Close with `code`; a later call without `flush` hurries a flushing close along."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            metrics.closed(code)
        elif flush or self._hurried:
            return
        if not flush:
            self._hurried = True
            if self._frames is not None:
                self._frames.clear()
                self._bytes = 0
            if self._sending and self._task is not None:
                self._task.cancel()  # blocked on a client that does not read
        if self._task is None or self._task.done():
            # Nobody is sending: start what sends the close (still joining: only the close).
            closing = self._run([]) if self._started else self._close_now()
            self._task = asyncio.create_task(closing, name=f"close-{self.token}")

    def watch(self, probe: metrics.FanoutProbe) -> None:
        """Tell `probe` when the frame just pushed has been written (or never will be)."""
        if self.close_code is None:
            probe.remaining += 1
            self._probe = probe

    async def wait_closed(self) -> None:
        if self.is_closed:
            return
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._closed)

    async def stop(self) -> None:
        """The socket is gone: end the sender task."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._set_closed()

    async def _run(self, history: list[Frame]) -> None:
        """Send `history`, then everything queued; then the close, if one was asked for."""
        try:
            for frame in history:
                if self._hurried:
                    break
                await self._sending_to_peer(frame, len(frame.get("texts", ())) or 1)
            await self._drain()
        except asyncio.CancelledError:
            if self.close_code is None:
                raise  # stopped, not closing
        except Exception:
            # The peer went away mid-send; the socket's receive side will see the disconnect.
            self._set_closed()
            return
        finally:
            self._sending = False
        if self.close_code is not None:
            await self._close_now()

    async def _drain(self) -> None:
        # A chunk at a time, each sent once the socket takes more (back-pressure): what this
        # client holds is its queue (bounded by `max_bytes`) and at most a chunk beyond the
        # transport's high-water mark.
        frames = self._frames
        if frames is None:
            return
        while frames:
            if self._send_many:
                if self._bytes <= CHUNK_BYTES:  # the usual case: all of it, at C speed
                    chunk, size = list(frames), self._bytes
                    frames.clear()
                else:
                    chunk, size = _take_chunk(frames)
                texts = [f["text"] for i, f in chunk if i > self._cutoff]
                if texts:
                    await self._sending_to_peer(_many(texts), len(texts))
                if self._probe is not None:
                    self._probe_passed(chunk[-1][0])
            else:
                message_id, frame = frames.popleft()
                size = frame_bytes(frame)
                if message_id > self._cutoff:
                    await self._sending_to_peer(frame)
                if self._probe is not None:
                    self._probe_passed(message_id)
            if not self._hurried:
                self._bytes -= size
        self._frames = None  # empty, and nothing ran since the loop saw it so

    async def _sending_to_peer(self, frame: Frame, frames: int = 1) -> None:
        self._sending = True  # a close that cannot wait may cancel us here
        await self._send(frame)
        self._sending = False
        _TALLY.frames_sent += frames

    async def _close_now(self) -> None:
        assert self.close_code is not None
        with contextlib.suppress(Exception):
            await self._send_close(self.close_code, self.close_reason)
        self._set_closed()

    def _probe_passed(self, message_id: int) -> None:
        probe = self._probe
        if probe is not None and message_id >= probe.message_id:
            self._probe = None
            probe.passed()

    def _set_closed(self) -> None:
        self.is_closed = True
        if self._probe is not None:
            self._probe, probe = None, self._probe
            probe.dropped()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)


def _many(texts: Iterable[str]) -> Frame:
    return {"type": "websocket.send", "texts": list(texts)}


def frame_bytes(frame: Frame) -> int:
    """What a frame's text may take, in memory or UTF-8, without encoding it (at most 4 bytes a
    character; ASCII, the common case, is known at once to take one)."""
    text: str = frame["text"]
    return len(text) if text.isascii() else 4 * len(text)


def _take_chunk(frames: deque[tuple[int, Frame]]) -> tuple[list[tuple[int, Frame]], int]:
    """Frames from the front of the queue up to CHUNK_BYTES (at least one), and their size."""
    taken = [frames.popleft()]
    size = frame_bytes(taken[0][1])
    while frames:
        next_size = frame_bytes(frames[0][1])
        if size + next_size > CHUNK_BYTES:
            break
        taken.append(frames.popleft())
        size += next_size
    return taken, size


def _chunks(frames: list[Frame]) -> Iterator[list[Frame]]:
    chunk: list[Frame] = []
    size = 0
    for frame in frames:
        if chunk and size + frame_bytes(frame) > CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(frame)
        size += frame_bytes(frame)
    if chunk:
        yield chunk
