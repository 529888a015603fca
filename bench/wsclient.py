"""A lean WebSocket client for the load generator: text frames, close and ping, nothing more.

Why not the `websockets` client: the generator must not be the bottleneck, and a hand-written
frame parser on an `asyncio.Protocol` costs a fraction of a full implementation per frame.
Server frames are never fragmented by the servers measured here (uvicorn, `websockets`), so
continuation frames are not handled. Client frames use an all-zero mask, which RFC 6455
allows a server to accept (it only asks a client to pick keys unpredictably).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time
import zlib
from collections.abc import Callable

OnText = Callable[[bytes, int], None]  # payload, perf_counter_ns when its read arrived

_ZERO_MASK = b"\x00\x00\x00\x00"


class WsClient(asyncio.Protocol):
    def __init__(self, on_text: OnText) -> None:
        loop = asyncio.get_running_loop()
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        self.handshake: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.close_code: int | None = None
        self._open = False
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(-15)  # permessage-deflate, if it was negotiated

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc or ConnectionError("closed during handshake"))
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._open and not self._read_handshake():
            return
        self._read_frames(time.perf_counter_ns())

    # frames

    def send_text(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(_header(0x81, len(payload)) + payload)

    def close(self, code: int = 1000) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_header(0x88, 2) + struct.pack("!H", code))

    def _read_handshake(self) -> bool:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        status = bytes(buf[: buf.find(b"\r\n")])
        del buf[: end + 4]
        if not status.startswith(b"HTTP/1.1 101"):
            self.handshake.set_exception(ConnectionError(status.decode(errors="replace")))
            assert self.transport is not None
            self.transport.close()
            return False
        self._open = True
        self.handshake.set_result(None)
        return True

    def _read_frames(self, now: int) -> None:
        buf = self._buf
        size = len(buf)
        pos = 0
        while size - pos >= 2:
            length = buf[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > size:
                break
            first = buf[pos]
            opcode = first & 0x0F
            pos = end
            if opcode == 1:
                payload = bytes(buf[start:end])
                if first & 0x40:  # RSV1: a compressed message
                    payload = self._inflate.decompress(payload + b"\x00\x00\xff\xff")
                self.on_text(payload, now)
            else:
                self._control(opcode, bytes(buf[start:end]))
        del buf[:pos]

    def _control(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        if opcode == 9:  # ping: servers drop clients that never answer
            self.transport.write(_header(0x8A, len(payload)) + payload)
        elif opcode == 8:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            self.close(1000)
            self.transport.close()


def _header(first: int, length: int) -> bytes:
    if length < 126:
        return bytes((first, 0x80 | length)) + _ZERO_MASK
    if length < 65536:
        return bytes((first, 0x80 | 126)) + struct.pack("!H", length) + _ZERO_MASK
    return bytes((first, 0x80 | 127)) + struct.pack("!Q", length) + _ZERO_MASK


# Added to every socket's URL (the `tokens` server's access token); set per workload by
# bench.load from its spec's "query".
QUERY = ""


async def connect(
    host: str,
    port: int,
    path: str,
    on_text: OnText,
    *,
    rcvbuf: int | None = None,
    subprotocol: str | None = None,
    deflate: bool = False,
    timeout: float = 30.0,
) -> WsClient:
    """Open a socket and finish the opening handshake. `rcvbuf` shrinks the kernel's receive
    buffer (set before connecting, so the TCP window follows): a slow reader fills up sooner."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    client = WsClient(on_text)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
        await loop.create_connection(lambda: client, sock=sock)
    except BaseException:
        sock.close()
        raise
    key = base64.b64encode(os.urandom(16)).decode()
    extra = f"Sec-WebSocket-Protocol: {subprotocol}\r\n" if subprotocol else ""
    if deflate:  # what browsers offer; the server decides whether to take it
        extra += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    if QUERY:
        path += f"{'&' if '?' in path else '?'}{QUERY}"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"{extra}\r\n"
    )
    assert client.transport is not None
    client.transport.write(request.encode())
    try:
        await asyncio.wait_for(asyncio.shield(client.handshake), timeout)
    except BaseException:
        client.transport.close()
        raise
    return client


async def close_all(clients: list[WsClient], timeout: float = 5.0) -> None:
    """Send a close frame to each, wait for the server to end the connection, then drop it."""
    for client in clients:
        client.close()
    waits = [c.lost for c in clients if not c.lost.done()]
    if waits:
        await asyncio.wait(waits, timeout=timeout)
    for client in clients:
        if client.transport is not None:
            client.transport.close()
