"""uvicorn's sansio WebSocket protocol, with closes that a non-reading client cannot hold up.

Stock uvicorn waits for the socket to become writable before it writes a close frame, and closes
the transport gracefully, which waits for the send buffer to drain. A client that stopped reading
never lets either happen, so its connection (and its buffered frames) would stay forever. Here:
- the close frame is written at once (it is a few bytes on top of a buffer already bounded by the
  transport's high-water mark), so a client that reads again soon still learns the close code;
- if the closing handshake has not completed after `close_timeout`, the transport is aborted;
- a keepalive ping that goes unanswered aborts the transport too (a dead peer is dropped);
- a client that sends pings (or other control frames) without reading the replies cannot
  grow the write buffer past the app's bound (`max_buffered` in the extension's dict, set by
  the socket route from CHAT_SEND_QUEUE_BYTES): it is closed with 1008 and no longer read;
- it offers the ASGI extension `chat.websocket.send_many`: a "websocket.send" message with a
  "texts" list writes all those text frames with one `transport.write` (one system call where
  stock uvicorn makes one a frame), which is how a connection drains its queue;
- and `chat.websocket.send_now`: a plain function that writes text frames at once when the
  socket takes them, so that a fan-out to clients who keep up needs no task per frame.

`python -m app` serves with it; with plain uvicorn pass `--ws app.protocol:ChatWebSocketProtocol`.
"""

from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.protocol import State

from app.connection import SEND_MANY, SEND_NOW
from app.frames import Frame

POLICY_VIOLATION = 1008
DEFAULT_MAX_BUFFERED = 4 * 1024 * 1024


class ChatWebSocketProtocol(WebSocketsSansIOProtocol):
    CLOSE_TIMEOUT = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_timeout = self.CLOSE_TIMEOUT
        # The SEND_MANY extension's dict: the app sets "max_buffered" in it.
        self.limits: dict[str, int] = {}

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # absent when the handshake was refused
        if scope is not None:
            scope["extensions"][SEND_MANY] = self.limits
            scope["extensions"][SEND_NOW] = {"send_now": self.send_now}

    def handle_ping(self) -> None:
        if self.close_sent:
            self.conn.data_to_send()  # no more replies to a client being closed
            return
        super().handle_ping()
        buffered = self.transport.get_write_buffer_size()
        if buffered > self.limits.get("max_buffered", DEFAULT_MAX_BUFFERED):
            self.logger.warning(
                "closing a client with 1008: %d bytes of replies to its control frames unread",
                buffered,
            )
            self._close_flooder()

    def _close_flooder(self) -> None:
        self.conn.send_close(POLICY_VIOLATION, "too many control frames")
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": POLICY_VIOLATION})
        self.read_paused = True
        self.transport.pause_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self._abort)

    async def send(self, message: Any) -> None:
        texts = message.get("texts")
        if texts is not None and message["type"] == "websocket.send":
            await self._send_many(texts)
            return
        if message["type"] != "websocket.close" or not self.handshake_complete:
            await super().send(message)
            if message["type"] == "websocket.accept":
                # The handshake's headers are not needed once it is done (~3 KB a socket).
                self.request = self.response = None  # type: ignore[assignment]
            return
        # Write the close frame even if the peer is not reading; the transport pauses again.
        self.writable.set()
        await super().send(message)
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = self.loop.call_later(self.close_timeout, self._abort)

    async def _send_many(self, texts: list[str]) -> None:
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if not self.handshake_complete or self.close_sent:
            raise RuntimeError("'websocket.send' before the handshake or after 'websocket.close'")
        try:
            for text in texts:
                self.conn.send_text(text.encode())
        except InvalidState:
            raise ClientDisconnected() from None
        self.transport.write(b"".join(self.conn.data_to_send()))

    def send_now(self, frames: list[Frame]) -> bool:
        """Write these text frames at once, without a task or an await, if the socket takes
        them now (open, not held back by back-pressure); False if not: then nothing was
        written and the caller sends them the ordinary way, which waits.

        A frame's bytes on the wire are the same for every client (a server does not mask, and
        no extension is negotiated): they are made once, kept in the shared frame, and written
        as they are to each socket of a fan-out."""
        if (
            not self.writable.is_set()
            or self.disconnected
            or not self.handshake_complete
            or self.close_sent
            or self.transport.is_closing()
            or self.conn.state is not State.OPEN
        ):
            return False
        if self.conn.extensions:  # not what `python -m app` negotiates, but then encode here
            for frame in frames:
                self.conn.send_text(frame["text"].encode())
            self.transport.write(b"".join(self.conn.data_to_send()))
            return True
        self.transport.write(b"".join([wire(frame) for frame in frames]))
        return True

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        self._abort()

    def _abort(self) -> None:
        self.close_timer = None
        if self.transport is not None:
            self.transport.abort()


def wire(frame: Frame) -> bytes:
    """A text frame as a server sends it, made once per frame and kept in it."""
    data: bytes | None = frame.get("wire")
    if data is None:
        data = frame["wire"] = text_frame(frame["text"].encode())
    return data


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented text frame, no extension (RFC 6455 5.2): what websockets'
    `Frame.serialize(mask=False)` makes, at a quarter of its cost (no Frame object, no
    checks that cannot fail here)."""
    size = len(payload)
    if size < 126:
        return bytes((_FIN_TEXT, size)) + payload
    if size < 65536:
        return bytes((_FIN_TEXT, 126)) + size.to_bytes(2, "big") + payload
    return bytes((_FIN_TEXT, 127)) + size.to_bytes(8, "big") + payload


_FIN_TEXT = 0x80 | Opcode.TEXT
