"""One client's outbound side: a bounded queue of frames and the task that drains it.

Promises:
- `push` never waits: it appends a shared, pre-encoded frame, or, when `limit` frames are
  already waiting, drops the queue and closes the client with 1013 (too slow to read);
- frames go out in the order pushed; while joining, frames are held until the history snapshot
  is known, then those at or below its cutoff id are skipped (no gap, no duplicate);
- a close asked with `flush=True` is sent after the frames already queued; without, at once.

Where the server offers the ASGI extension `SEND_MANY` (`python -m app` does), every frame
queued at a wake-up goes to the socket in one send, and so does the join's history.
"""

import asyncio
import contextlib
import itertools
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from app.frames import Frame

log = logging.getLogger(__name__)

SendFrame = Callable[[Frame], Awaitable[None]]
SendClose = Callable[[int, str], Awaitable[None]]

TOO_SLOW = 1013
# An ASGI extension of app.protocol: a "websocket.send" with "texts" sends them all at once.
SEND_MANY = "chat.websocket.send_many"
_tokens = itertools.count(1)
_process = os.urandom(4).hex()


class Connection:
    def __init__(
        self,
        room_id: str,
        send: SendFrame,
        close: SendClose,
        *,
        json: bool,
        limit: int,
        send_many: bool = False,
    ) -> None:
        self.room_id = room_id
        self.json = json
        self._send_many = send_many
        # Unique across processes: a message's sender token travels through the broker.
        self.token = f"{_process}-{next(_tokens)}"
        self._send = send
        self._send_close = close
        self._limit = limit
        self._frames: deque[tuple[int, Frame]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sending = False
        self._cutoff = 0
        self._failed = False
        self._hurried = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = asyncio.Event()

    @property
    def queued(self) -> int:
        return len(self._frames)

    @property
    def failed(self) -> bool:
        return self._failed

    def push(self, message_id: int, frame: Frame) -> None:
        if self.close_code is not None:
            return
        if len(self._frames) >= self._limit:
            log.warning("closing a client of room %r with 1013: it stopped reading", self.room_id)
            self.close(TOO_SLOW, "too slow to read")
            return
        self._frames.append((message_id, frame))
        self._wakeup.set()

    def start(self, history: Iterable[Frame], cutoff: int) -> None:
        """Send the history, then queued frames above `cutoff`, then live frames."""
        if self._task is not None:
            return  # closed while joining
        self._cutoff = cutoff
        frames = list(history)
        if self._send_many and frames:
            frames = [_many(frame["text"] for frame in frames)]
        self._task = asyncio.create_task(self._run(frames), name=f"send-{self.token}")

    def write_failed(self) -> None:
        """The writer could not commit a message of this client's: it was never shown."""
        self._failed = True
        self.close(1011, "message could not be stored")

    def close(self, code: int, reason: str = "", *, flush: bool = False) -> None:
        """Close with `code`; a later call without `flush` hurries a flushing close along."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        elif flush or self._hurried:
            return
        if not flush:
            self._hurried = True
            self._frames.clear()
            if self._sending and self._task is not None:
                self._task.cancel()  # blocked on a client that does not read
        self._wakeup.set()
        if self._task is None:
            # Not started (still joining): nobody else will send the close frame.
            self._task = asyncio.create_task(self._close_now(), name=f"close-{self.token}")

    async def stop(self) -> None:
        """The socket is gone: end the sender task."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.closed.set()

    async def _run(self, history: list[Frame]) -> None:
        try:
            self._sending = True
            for frame in history:
                if self._hurried:
                    break
                await self._send(frame)
            self._sending = False
            await self._drain()
        except asyncio.CancelledError:
            if self.close_code is None:
                raise  # stopped, not closing
        except Exception:
            # The peer went away mid-send; the socket's receive side will see the disconnect.
            self.closed.set()
            return
        finally:
            self._sending = False
        await self._close_now()

    async def _drain(self) -> None:
        frames = self._frames
        while True:
            while frames:
                if self._send_many:
                    texts = [f["text"] for i, f in _popall(frames) if i > self._cutoff]
                    if texts:
                        await self._sending_to_peer(_many(texts))
                    continue
                message_id, frame = frames.popleft()
                if message_id > self._cutoff:
                    await self._sending_to_peer(frame)
            if self.close_code is not None:
                return
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _sending_to_peer(self, frame: Frame) -> None:
        self._sending = True  # a close that cannot wait may cancel us here
        await self._send(frame)
        self._sending = False

    async def _close_now(self) -> None:
        assert self.close_code is not None
        with contextlib.suppress(Exception):
            await self._send_close(self.close_code, self.close_reason)
        self.closed.set()


def _many(texts: Iterable[str]) -> Frame:
    return {"type": "websocket.send", "texts": list(texts)}


def _popall(frames: deque[tuple[int, Frame]]) -> list[tuple[int, Frame]]:
    taken = list(frames)
    frames.clear()
    return taken
