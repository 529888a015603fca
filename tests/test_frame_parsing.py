"""The server's own parsing of ordinary text frames (app/protocol.py): whatever way a client's
bytes are cut into reads, and whatever other frames are mixed in, every message arrives once,
in order, and everything else is answered as websockets and uvicorn answer it.

A raw client: websockets' sans-I/O client for the handshake and for reading, frames written as
bytes, in pieces, so that the server's reads split them anywhere."""

import asyncio
import contextlib
from urllib.parse import urlsplit

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

pytestmark = pytest.mark.anyio


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.protocol: ClientProtocol

    @classmethod
    async def join(cls, url: str) -> "RawClient":
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        client = cls(reader, writer)
        client.protocol = ClientProtocol(parse_uri(url))
        client.protocol.send_request(client.protocol.connect())
        await client.flush()
        while client.protocol.handshake_exc is None and not client.protocol.events_received():
            client.protocol.receive_data(await reader.read(65536))
        assert client.protocol.handshake_exc is None
        return client

    async def flush(self) -> None:
        for data in self.protocol.data_to_send():
            self.writer.write(data)
        await self.writer.drain()

    async def write_in_pieces(self, data: bytes, piece: int) -> None:
        for start in range(0, len(data), piece):
            self.writer.write(data[start : start + piece])
            await self.writer.drain()
            await asyncio.sleep(0.002)  # a read of its own on the server, most of the time

    async def frames(self, count: int, timeout: float = 10.0) -> list[Frame]:
        got: list[Frame] = []
        async with asyncio.timeout(timeout):
            while len(got) < count:
                got += [e for e in self.protocol.events_received() if isinstance(e, Frame)]
                if len(got) >= count:
                    break
                try:
                    data = await self.reader.read(65536)
                except ConnectionResetError:
                    # The server closed with bytes of ours unread (after a 1007, say): its
                    # kernel resets the connection, which ends the stream as EOF would.
                    data = b""
                if not data:
                    self.protocol.receive_eof()
                    got += [e for e in self.protocol.events_received() if isinstance(e, Frame)]
                    break
                self.protocol.receive_data(data)
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    await self.flush()  # pongs to the server's pings; a close's reply
        return got

    async def close(self) -> None:
        self.writer.close()
        # A server that closed with unread bytes from us resets the connection: already gone.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            await self.writer.wait_closed()


async def exchange(url: str, writes: list[tuple[bytes, int]], answers: int) -> list[Frame]:
    """Join, write each (bytes, piece size) in pieces of that size, read `answers` frames."""
    client = await RawClient.join(url)
    try:
        for data, piece in writes:
            await client.write_in_pieces(data, piece)
        return await client.frames(answers)
    finally:
        await client.close()


def masked(opcode: Opcode, payload: bytes, *, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin=fin).serialize(mask=True)


@pytest.mark.parametrize("piece", [1, 2, 3, 5, 7, 64, 100_000])
async def test_messages_cut_anywhere_and_mixed_with_other_frames_arrive_once_in_order(
    server, room, piece
):
    long = "L" * 300  # a 16-bit length
    stream = b"".join(
        [
            masked(Opcode.TEXT, b"one"),
            masked(Opcode.TEXT, b"two"),
            masked(Opcode.PING, b"p1"),
            masked(Opcode.TEXT, long.encode()),
            masked(Opcode.TEXT, b"thr", fin=False),  # a fragmented message
            masked(Opcode.CONT, "ée".encode()),
            masked(Opcode.TEXT, b"four"),
            masked(Opcode.TEXT, "fünf".encode()),
        ]
    )
    frames = await exchange(server.ws(room), [(stream, piece)], 7)
    texts = [f.data.decode() for f in frames if f.opcode is Opcode.TEXT]
    expected = ["one", "two", long, "thrée", "four", "fünf"]
    assert texts == [f"You wrote: {t}" for t in expected]
    assert [f.data for f in frames if f.opcode is Opcode.PONG] == [b"p1"]
    assert [m["text"] for m in server.messages(room)] == expected


@pytest.mark.parametrize("piece", [1, 4, 100_000])
async def test_bad_utf8_after_a_good_frame_closes_with_1007_and_is_never_stored(
    server, room, piece
):
    """Read at once, the good frame may be refused with the bad one (the close is at once, as
    in stock uvicorn); it is never stored twice or shown out of order, the bad one never."""
    stream = masked(Opcode.TEXT, b"fine") + masked(Opcode.TEXT, b"bad \xff\xfe")
    frames = await exchange(server.ws(room), [(stream, piece)], 2)
    closes = [f for f in frames if f.opcode is Opcode.CLOSE]
    assert int.from_bytes(closes[0].data[:2]) == 1007
    assert [f.data for f in frames[: frames.index(closes[0])]] in ([], [b"You wrote: fine"])
    assert [m["text"] for m in server.messages(room)] in ([], ["fine"])


async def test_an_unmasked_frame_is_a_protocol_error_and_is_not_stored(server, room):
    bare = Frame(Opcode.TEXT, b"bare").serialize(mask=False)
    frames = await exchange(server.ws(room), [(bare, 100)], 1)
    assert frames[0].opcode is Opcode.CLOSE
    assert int.from_bytes(frames[0].data[:2]) == 1002
    assert server.messages(room) == []


async def test_a_frame_whose_header_came_alone_is_never_read_again_from_its_middle(server, room):
    """A ping's header in one read, the rest in the next: what follows the header looks like
    a text frame of its own ("AB", mask and payload made so); it is the ping's, not a message."""
    mask = bytes([0x81, 0x82, 0x00, 0x00])  # read from here on, it is a text frame's header
    on_the_wire = bytes([0x00, 0x00, 0x41, 0x42, 0x00, 0x00])
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(on_the_wire))
    ping = bytes([0x80 | Opcode.PING, 0x80 | len(payload)]) + mask + on_the_wire
    writes = [(ping[:2], 2), (ping[2:], 100), (masked(Opcode.TEXT, b"after"), 100)]
    frames = await exchange(server.ws(room), writes, 2)
    assert [(f.opcode, bytes(f.data)) for f in frames] == [
        (Opcode.PONG, payload),
        (Opcode.TEXT, b"You wrote: after"),
    ]
    assert [m["text"] for m in server.messages(room)] == ["after"]
