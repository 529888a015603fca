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
  socket takes them, so that a fan-out to clients who keep up needs no task per frame;
- a client's ordinary frames (whole, masked, unfragmented text, valid UTF-8, within the size
  limit) are parsed here, a few lines of work, rather than by websockets' parser of generators
  (5-6 µs a frame); anything else, from the first byte that is not such a frame, goes to
  websockets as it arrived, so pings, closes, binary and fragmented frames, bad masks, bad
  UTF-8 and oversized frames are answered exactly as stock uvicorn answers them.

`python -m app` serves with it; with plain uvicorn pass `--ws app.protocol:ChatWebSocketProtocol`.
"""

from collections.abc import Generator
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.frames import Opcode, apply_mask
from websockets.http11 import Request
from websockets.protocol import State
from websockets.streams import StreamReader

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
        # The start of a frame parsed here whose end has not arrived (see data_received).
        self._partial = b""

    def data_received(self, data: bytes) -> None:
        if self._partial:
            data, self._partial = self._partial + data, b""
        elif not self._parsing_here():
            super().data_received(data)
            return
        self._receive_texts(data)

    def _parsing_here(self) -> bool:
        """Whether frames may be parsed here: an open connection that has sent no close, no
        extension, no fragmented message going on, and websockets' parser waiting at a frame
        boundary with nothing buffered (so nothing of its stream is skipped or reordered)."""
        conn = self.conn
        return (
            self.handshake_complete
            and not self.close_sent
            and conn.state is State.OPEN
            and conn.parser_exc is None
            and not conn.extensions
            and conn.current_size is None
            and not conn.reader.buffer
            and _at_frame_boundary(conn.parser)
        )

    def _receive_texts(self, data: bytes) -> None:
        """Queue the whole text frames at the start of `data` for the app, as uvicorn's
        `send_receive_event_to_app` would; keep an unfinished one; hand the rest, from the
        first frame that is not an ordinary text frame, to websockets."""
        size, at, limit = len(data), 0, self.conn.max_message_size
        texts: list[str] = []
        while size - at >= 2:
            first, second = data[at], data[at + 1]
            length, head = second & 0x7F, at + 2
            if length == 126:
                length, head = int.from_bytes(data[head : head + 2]), head + 2
            elif length == 127:
                length, head = int.from_bytes(data[head : head + 8]), head + 8
            if first != _FIN_TEXT or not second & 0x80 or (limit is not None and length > limit):
                break  # control, binary, fragment, reserved bits, unmasked, too big
            end = head + 4 + length
            if end > size:
                if head > size:
                    break  # the length is not all there: websockets reads it (bounded)
                self._partial = data[at:]  # within the size limit: wait for the rest
                at = size
                break
            try:
                texts.append(apply_mask(data[head + 4 : end], data[head : head + 4]).decode())
            except UnicodeDecodeError:
                break  # websockets and uvicorn close with 1007
            at = end
        if self.close_sent:
            texts = []  # as uvicorn: past `websocket.close`, what still arrives is dropped
        for text in texts:
            self.queue.put_nowait({"type": "websocket.receive", "text": text})
        if texts and not self.read_paused:
            self.read_paused = True  # as uvicorn: read more once the app took these
            self.transport.pause_reading()
        if at < size:
            super().data_received(data[at:])

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
_AT_EOF = StreamReader.at_eof.__code__


def _at_frame_boundary(parser: Generator[None]) -> bool:
    """Whether websockets' parser is suspended between frames (in `StreamReader.at_eof`,
    at the top of its loop), not inside one whose header it has read."""
    inner: Any = parser
    while inner.gi_yieldfrom is not None:
        inner = inner.gi_yieldfrom
    return inner.gi_code is _AT_EOF
