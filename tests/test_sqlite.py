"""SQLite serves one process: a second server on the same file refuses to start, and a write
batch stays within SQLite's bound on parameters per statement whatever its size."""

import asyncio
import subprocess
import sys
import time

import httpx
import pytest

from tests.clients import join, recv, recv_n
from tests.support import ROOT, ServerProcess, faulty_server_command, free_port, unique_room

pytestmark = pytest.mark.anyio


def run_second(
    srv: ServerProcess, command: list[str]
) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**srv.env, "CHAT_PORT": str(free_port())}
    started = time.monotonic()
    result = subprocess.run(
        [arg.replace("{port}", env["CHAT_PORT"]) for arg in command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, time.monotonic() - started


UVICORN = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", "{port}"]


@pytest.mark.parametrize(
    "command", [[sys.executable, "-m", "app"], UVICORN], ids=["python-m-app", "uvicorn"]
)
async def test_a_second_server_process_on_one_sqlite_file_refuses_to_start(
    start_server, room, command
):
    first = start_server()
    async with join(first.ws(room)) as ws:
        result, took = run_second(first, command)
        assert result.returncode != 0
        assert took < 30
        output = result.stdout + result.stderr
        refusals = [line for line in output.splitlines() if "another server process" in line]
        assert refusals, output
        assert "PostgreSQL" in refusals[0] and "CHAT_REDIS_URL" in refusals[0]
        # The first one serves on, undisturbed.
        await ws.send("still served")
        assert await recv(ws) == "You wrote: still served"
    if command[-1] != "{port}":  # python -m app: the refusal is its only error line
        errors = [line for line in output.splitlines() if "ERROR" in line]
        assert errors == refusals, output


async def test_the_sqlite_file_is_free_again_once_its_server_is_gone(start_server, room, tmp_path):
    first = start_server()
    first.kill()  # SIGKILL: the kernel releases the lock of a process however it ends
    again = start_server(workdir=tmp_path)
    async with join(again.ws(room)) as ws:
        await ws.send("served again")
        assert await recv(ws) == "You wrote: served again"


async def test_a_write_batch_stays_within_sqlites_parameter_bound(start_server):
    # A SQLite built with the bound of before 3.32 (999 parameters), a batch of any size: 300
    # rooms and 600 messages gather in one batch while the previous write waits.
    rooms = [unique_room() for _ in range(300)]
    srv = start_server(
        {
            "CHAT_TEST_SQLITE_VARIABLES": "999",
            "CHAT_TEST_WRITE_DELAY": "0.5",
            "CHAT_WRITE_BATCH": "100000",
            "CHAT_RATE_LIMIT": "0",
        },
        command=faulty_server_command(),
    )
    clients = [await join(srv.ws(r)).__aenter__() for r in rooms]
    try:
        await clients[0].send("first")
        assert await recv(clients[0]) == "You wrote: first"
        await clients[0].send("opens a write")
        for ws in clients:
            await ws.send("one")
            await ws.send("two")
        for n, ws in enumerate(clients):
            expected = ["opens a write"] if n == 0 else []
            got = await recv_n(ws, len(expected) + 2)
            assert got == [f"You wrote: {t}" for t in [*expected, "one", "two"]]
    finally:
        await asyncio.gather(*(ws.close() for ws in clients))
    counts = {r["room_id"]: r["messages"] for r in httpx.get(f"{srv.http}/rooms?limit=1000").json()}
    assert [counts.get(room) for room in rooms[1:]] == [2] * (len(rooms) - 1)
    assert "commit of" not in srv.log()
