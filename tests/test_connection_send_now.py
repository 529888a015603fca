"""A connection's direct writes (`SEND_NOW`): unit level, with the socket's send functions
recorded. The real server's delivery, order and slow-reader guarantees are tested through it in
tests/test_rooms.py and tests/test_unlucky_clients.py."""

import asyncio

import pytest
from websockets.frames import Frame as WireFrame
from websockets.frames import Opcode

from app.connection import Connection
from app.frames import Frame
from app.protocol import text_frame, wire

pytestmark = pytest.mark.anyio


class Socket:
    def __init__(self) -> None:
        self.takes = True
        self.now: list[list[str]] = []
        self.sent: list[Frame] = []
        self.unblock = asyncio.Event()
        self.unblock.set()

    def send_now(self, frames: list[Frame]) -> bool:
        if self.takes:
            self.now.append([f["text"] for f in frames])
        return self.takes

    async def send(self, frame: Frame) -> None:
        await self.unblock.wait()
        self.sent.append(frame)

    async def close(self, code: int, reason: str) -> None:
        return None


def frame(text: str) -> Frame:
    return {"type": "websocket.send", "text": text}


async def started(socket: Socket) -> Connection:
    conn = Connection(
        "r",
        socket.send,
        socket.close,
        json=False,
        limit=100,
        send_many=True,
        send_now=socket.send_now,
    )
    conn.start([], cutoff=0)
    await asyncio.sleep(0)  # the (empty) history's task ends
    return conn


async def test_frames_pushed_in_one_turn_are_written_at_once_in_one_write_without_a_task():
    socket = Socket()
    conn = await started(socket)
    tasks = len(asyncio.all_tasks())
    assert conn.push(1, frame("a")) and conn.push(2, frame("b"))
    conn.kick()
    assert socket.now == [["a", "b"]] and socket.sent == []
    assert len(asyncio.all_tasks()) == tasks and conn.queued == 0


async def test_a_socket_that_holds_writes_back_gets_them_from_a_task_in_order():
    socket = Socket()
    conn = await started(socket)
    socket.takes = False
    socket.unblock.clear()
    assert conn.push(1, frame("a"))
    conn.kick()  # not taken now: a task waits for the socket
    assert not conn.push(2, frame("b"))  # the task will send it: nothing to kick
    socket.takes = True
    conn.kick()  # a task is sending: a kick must not overtake it
    socket.unblock.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert socket.now == []
    assert [t for f in socket.sent for t in f.get("texts", [f.get("text")])] == ["a", "b"]


async def test_frames_at_or_below_the_join_cutoff_are_never_written():
    socket = Socket()
    conn = Connection(
        "r",
        socket.send,
        socket.close,
        json=False,
        limit=100,
        send_many=True,
        send_now=socket.send_now,
    )
    assert not conn.push(5, frame("old"))  # held while joining
    conn.start([], cutoff=5)
    await asyncio.sleep(0)
    assert conn.push(6, frame("new"))
    conn.kick()
    sent = [t for f in socket.sent for t in f.get("texts", [f.get("text")])]
    assert sent + [t for texts in socket.now for t in texts] == ["new"]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_a_frame_written_directly_is_the_frame_websockets_would_write(size: int) -> None:
    """app.protocol builds the wire bytes itself: they must be websockets' own, length
    encodings (7-bit, 16-bit, 64-bit) included."""
    payload = ("é" * size)[: size // 2] + "x" * (size - size // 2)
    expected = WireFrame(Opcode.TEXT, payload.encode()).serialize(mask=False)
    assert text_frame(payload.encode()) == expected
    assert wire(frame(payload)) == expected
