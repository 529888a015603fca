"""Stopping the server loses nothing: SIGTERM/SIGINT drain, SIGKILL keeps every echoed message,
and a failing commit shows nothing of what it lost."""

import asyncio
import contextlib
import signal
import sqlite3
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.clients import closed_with, join, recv
from tests.support import faulty_server_command, unique_room

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_commits_what_is_queued_closes_clients_with_1001_and_exits_0(
    start_server, room, sig
):
    srv = start_server({"CHAT_RATE_LIMIT": "0"})
    async with join(srv.ws(room)) as a, join(srv.ws(room)) as b:
        for i in range(200):
            await a.send(f"m{i}")
        await recv(a)  # the writer is busy with the rest while the signal arrives
        started = time.monotonic()
        srv.signal(sig)
        assert await closed_with(a) == 1001
        assert await closed_with(b) == 1001
        assert srv.wait(timeout=10) == 0
        assert time.monotonic() - started < 8
    again = start_server(workdir=srv.workdir)
    assert [m["text"] for m in again.all_messages(room)] == [f"m{i}" for i in range(200)]


async def test_new_connections_are_refused_while_draining(start_server, room):
    srv = start_server()
    srv.signal(signal.SIGTERM)
    assert srv.wait(timeout=10) == 0
    with pytest.raises(OSError):
        async with join(srv.ws(room), open_timeout=2):
            pass


async def test_sigkill_right_after_the_echoes_keeps_every_echoed_message(start_server, room):
    srv = start_server({"CHAT_RATE_LIMIT": "0"})
    echoed = []
    async with join(srv.ws(room)) as ws:
        for i in range(100):
            await ws.send(f"k{i}")
        for _ in range(100):
            echoed.append((await recv(ws)).removeprefix("You wrote: "))
        srv.kill()
    again = start_server(workdir=srv.workdir)
    stored = [m["text"] for m in again.all_messages(room)]
    assert stored[: len(echoed)] == echoed


async def test_sigkill_mid_stream_keeps_whatever_was_echoed(start_server, room):
    srv = start_server({"CHAT_RATE_LIMIT": "0"})
    echoed: list[str] = []
    async with join(srv.ws(room)) as ws:

        async def reader() -> None:
            while True:
                echoed.append((await recv(ws)).removeprefix("You wrote: "))
                if len(echoed) == 50:
                    srv.kill()  # while more messages are still queued or being committed

        task = asyncio.create_task(reader())
        for i in range(300):
            await ws.send(f"k{i}")
        await asyncio.gather(task, return_exceptions=True)
    assert len(echoed) >= 50
    again = start_server(workdir=srv.workdir)
    stored = [m["text"] for m in again.all_messages(room)]
    assert set(echoed) <= set(stored)


async def test_a_failed_commit_is_never_shown_closes_its_senders_with_1011_and_the_server_goes_on(
    start_server, tmp_path, room
):
    fault = tmp_path / "fault"
    srv = start_server(
        {"CHAT_TEST_FAULT_FILE": str(fault), "CHAT_RATE_LIMIT": "0"},
        command=faulty_server_command(),
    )
    async with join(srv.ws(room)) as sender, join(srv.ws(room)) as watcher:
        await sender.send("stored before")
        assert await recv(sender) == "You wrote: stored before"
        assert await recv(watcher) == "A client says: stored before"
        fault.touch()
        await sender.send("lost in the failed commit")
        assert await closed_with(sender) == 1011
        fault.unlink()
        await watcher.send("stored after")
        # The watcher never saw the lost message: the next frame it gets is its own echo.
        assert await recv(watcher) == "You wrote: stored after"
    assert [m["text"] for m in srv.messages(room)] == ["stored before", "stored after"]
    failures = [line for line in srv.log().splitlines() if "commit of" in line and "failed" in line]
    assert len(failures) == 1, srv.log()
    assert httpx.get(f"{srv.http}/healthz").status_code == 200


RATE = 20  # the default


@pytest.mark.slow
async def test_the_drain_ends_within_10_s_while_100_clients_keep_sending(start_server):
    # Each client sends as fast as its rate limit lets it, and each commit takes 50 ms (a slow
    # disk): the writer's queue is never empty.
    srv = start_server(
        {"CHAT_RATE_LIMIT": str(RATE), "CHAT_TEST_WRITE_DELAY": "0.05"},
        command=faulty_server_command(),
    )
    rooms = [unique_room() for _ in range(100)]
    clients = [await join(srv.ws(r)).__aenter__() for r in rooms]
    echoed: list[str] = []
    stop = asyncio.Event()

    async def keep_sending(n: int, ws) -> None:
        i = 0
        with contextlib.suppress(ConnectionClosed):
            while not stop.is_set():
                await ws.send(f"c{n}-{i}")
                i += 1
                await asyncio.sleep(1 / RATE)

    async def read_echoes(ws) -> int | None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = await ws.recv()
                if frame.startswith("You wrote: "):
                    echoed.append(frame.removeprefix("You wrote: "))
        return ws.close_code

    senders = [asyncio.create_task(keep_sending(n, ws)) for n, ws in enumerate(clients)]
    readers = [asyncio.create_task(read_echoes(ws)) for ws in clients]
    deadline = time.monotonic() + 30
    while len(echoed) <= 1000:  # the writer's queue is busy (however loaded the machine)
        assert time.monotonic() < deadline, "the clients are not sending"
        await asyncio.sleep(0.1)
    started = time.monotonic()
    srv.signal(signal.SIGTERM)
    try:
        code = await asyncio.to_thread(srv.wait, 30)
        took = time.monotonic() - started
    finally:
        stop.set()
        codes = await asyncio.gather(*readers)
        await asyncio.gather(*senders)
    assert code == 0
    assert took < 10, f"the drain took {took:.1f} s"
    assert set(codes) == {1001}
    with contextlib.closing(sqlite3.connect(srv.workdir / "chat.db")) as db:  # it has exited
        stored = {text for (text,) in db.execute("SELECT text FROM messages")}
    missing = set(echoed) - stored
    assert not missing, f"{len(missing)} echoed message(s) not stored"
