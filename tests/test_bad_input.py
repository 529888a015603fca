"""Bad input closes the offending client with the contract's code; the room carries on."""

import asyncio
import contextlib
import sys

import pytest
from websockets.exceptions import ConnectionClosed

from tests.clients import closed_with, join, no_frame, recv

pytestmark = pytest.mark.anyio

UVICORN = [
    sys.executable,
    "-m",
    "uvicorn",
    "app.main:app",
    "--host",
    "127.0.0.1",
    "--port",
    "{port}",
]


async def test_a_binary_frame_is_closed_with_1003_and_nothing_is_stored(server, room):
    async with join(server.ws(room)) as bad, join(server.ws(room)) as other:
        await bad.send(b"\x00\x01binary")
        assert await closed_with(bad) == 1003
        await other.send("still here")
        assert await recv(other) == "You wrote: still here"
    assert [m["text"] for m in server.messages(room)] == ["still here"]


@pytest.mark.parametrize("char", ["a", "é", "€", "😀"])
async def test_text_at_the_byte_limit_is_accepted(server, room, char):
    limit = 4096
    text = char * (limit // len(char.encode()))
    text += "a" * (limit - len(text.encode()))
    assert len(text.encode()) == limit
    async with join(server.ws(room)) as ws:
        await ws.send(text)
        assert await recv(ws) == f"You wrote: {text}"


@pytest.mark.parametrize("char", ["a", "é", "😀"])
async def test_text_over_the_byte_limit_is_closed_with_1009(server, room, char):
    text = char * (4096 // len(char.encode())) + "a" * 4  # a few bytes over, in UTF-8
    async with join(server.ws(room)) as big, join(server.ws(room)) as other:
        await big.send(text)
        assert await closed_with(big) == 1009
        await other.send("after")
        assert await recv(other) == "You wrote: after"
    assert [m["text"] for m in server.messages(room)] == ["after"]


async def test_under_plain_uvicorn_the_app_checks_utf8_bytes_itself(start_server, room):
    # `uvicorn app.main:app` keeps uvicorn's own 16 MiB frame limit: the app's check, in UTF-8
    # bytes, still closes with 1009 (34 characters of 3 bytes are over 100 bytes).
    srv = start_server({"CHAT_MAX_MESSAGE_BYTES": "100"}, command=UVICORN)
    async with join(srv.ws(room)) as ok:
        await ok.send("€" * 33)
        assert await recv(ok) == "You wrote: " + "€" * 33
    async with join(srv.ws(room)) as ws:
        await ws.send("€" * 34)
        assert await closed_with(ws) == 1009
    assert [m["text"] for m in srv.messages(room)] == ["€" * 33]


async def test_the_server_never_buffers_a_frame_beyond_the_limit(server, room):
    async with join(server.ws(room)) as ws:
        # The server refuses on the frame's header and closes before the payload is through.
        with contextlib.suppress(ConnectionClosed):
            await ws.send("x" * (8 * 1024 * 1024))
        assert await closed_with(ws) == 1009
    assert server.messages(room) == []


async def test_a_flooding_client_is_closed_with_1008_and_others_carry_on(start_server, room):
    srv = start_server({"CHAT_RATE_LIMIT": "20", "CHAT_RATE_BURST": "60"})
    async with join(srv.ws(room)) as flood, join(srv.ws(room)) as calm:
        for i in range(2000):
            try:
                await flood.send(f"flood {i}")
            except Exception:
                break
        assert await closed_with(flood) == 1008
        await calm.send("calm")
        frames = []
        while (frame := await recv(calm)) != "You wrote: calm":
            frames.append(frame)
    stored = srv.all_messages(room)
    flooded = [m for m in stored if m["text"].startswith("flood")]
    assert 60 <= len(flooded) < 200  # the burst, not the 2,000
    assert stored[-1]["text"] == "calm"


async def test_a_client_at_5_messages_per_second_is_never_closed(start_server, room):
    # Just above 5/s with almost no burst: only a bucket that refills correctly lets it through.
    srv = start_server({"CHAT_RATE_LIMIT": "6", "CHAT_RATE_BURST": "2"})
    async with join(srv.ws(room)) as ws:
        for i in range(15):
            await ws.send(f"steady {i}")
            assert await recv(ws) == f"You wrote: steady {i}"
            await asyncio.sleep(0.2)
        assert await no_frame(ws, 0.1)
    assert len(srv.messages(room)) == 15


async def test_rate_limit_zero_disables_the_bucket(server, room):
    async with join(server.ws(room)) as ws:
        for i in range(500):
            await ws.send(f"m{i}")
        for i in range(500):
            assert await recv(ws) == f"You wrote: m{i}"


async def test_text_holding_u0000_is_closed_with_1007_and_nothing_is_stored(server, room):
    # PostgreSQL cannot store U+0000: refused on every database, before it reaches a batch.
    async with join(server.ws(room)) as bad, join(server.ws(room)) as other:
        await bad.send("before\x00after")
        assert await closed_with(bad) == 1007
        await other.send("still here")
        assert await recv(other) == "You wrote: still here"
    assert [m["text"] for m in server.messages(room)] == ["still here"]
