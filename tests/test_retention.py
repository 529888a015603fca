"""Retention and `python -m app prune`, through real servers (contract: "Operations",
Retention). Old messages are put in the past by `python -m app import`."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.clients import history, join, join_json, recv, recv_json
from tests.support import ROOT, ServerProcess, unique_room

pytestmark = pytest.mark.anyio

YEAR_AGO = datetime.now(UTC) - timedelta(days=365)


def ndjson(path: Path, rooms: list[str], n: int, *, first_id: int = 1) -> Path:
    """`n` messages of a year ago, spread over `rooms`, one a second, as `export` writes them."""
    with path.open("w") as out:
        for k in range(n):
            at = YEAR_AGO + timedelta(seconds=k)
            out.write(
                json.dumps(
                    {
                        "id": first_id + k,
                        "room_id": rooms[k % len(rooms)],
                        "text": f"old message {k} oldword",
                        "created_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                        "author": "archivist",
                    }
                )
                + "\n"
            )
    return path


def run_app(
    database_url: str, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "CHAT_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def seed(database_url: str, path: Path) -> None:
    result = run_app(database_url, "import", str(path))
    assert result.returncode == 0, result.stderr


def texts(server: ServerProcess, room: str) -> list[str]:
    response = httpx.get(f"{server.http}/rooms/{room}/messages", params={"limit": 1000})
    return [m["text"] for m in response.json()]


def counts(server: ServerProcess) -> dict[str, int]:
    rooms = httpx.get(f"{server.http}/rooms", params={"limit": 1000}).json()
    return {r["room_id"]: r["messages"] for r in rooms}


async def say(server: ServerProcess, room: str, text: str) -> int:
    async with join_json(server.ws(room)) as ws:
        await history(ws)
        await ws.send(text)
        return int((await recv_json(ws))["id"])


async def test_prune_deletes_what_is_older_and_keeps_the_newest(tmp_path: Path) -> None:
    rooms = [unique_room(), unique_room()]
    server = ServerProcess(tmp_path)
    seed(server.database_url, ndjson(tmp_path / "old.ndjson", rooms, 30))
    server.start()
    try:
        new_ids = [await say(server, rooms[0], "new one"), await say(server, rooms[1], "new two")]
        assert min(new_ids) > 30
        assert counts(server)[rooms[0]] == 16
        # While the server runs, as the contract allows.
        result = run_app(server.database_url, "prune", "--older-than", "30d")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "deleted 30 message(s) older than 30d"
        assert texts(server, rooms[0]) == ["new one"]
        assert texts(server, rooms[1]) == ["new two"]
        assert counts(server)[rooms[0]] == counts(server)[rooms[1]] == 1
        assert httpx.get(f"{server.http}/search", params={"q": "oldword"}).json() == []
        again = run_app(server.database_url, "prune", "--older-than", "12h")
        assert again.stdout.strip() == "deleted 0 message(s) older than 12h"
    finally:
        server.stop()


def test_prune_refuses_a_bad_duration(tmp_path: Path) -> None:
    result = run_app(f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}", "prune", "--older-than", "soon")
    assert result.returncode == 2
    assert "not a duration" in result.stderr


async def test_the_server_deletes_expired_messages_by_itself(tmp_path: Path) -> None:
    room = unique_room()
    server = ServerProcess(
        tmp_path, {"CHAT_RETENTION_DAYS": "30", "CHAT_RETENTION_INTERVAL": "0.5"}
    )
    seed(server.database_url, ndjson(tmp_path / "old.ndjson", [room], 1200))  # > one batch
    server.start()
    try:
        deadline = time.monotonic() + 30
        while texts(server, room) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert texts(server, room) == []
        assert room not in counts(server)
        await say(server, room, "fresh")
        assert texts(server, room) == ["fresh"]
        assert "retention: deleted 1200 message(s) older than 30 day(s)" in server.log()
    finally:
        server.stop()


def test_a_retention_setting_out_of_range_stops_the_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "CHAT_RETENTION_DAYS": "-3"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "CHAT_RETENTION_DAYS" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.services
async def test_on_two_processes_the_messages_are_deleted_once(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    rooms = [unique_room() for _ in range(3)]
    seed(fresh_postgres_url, ndjson(tmp_path / "old.ndjson", rooms, 3000))
    env = {"CHAT_RETENTION_DAYS": "30", "CHAT_RETENTION_INTERVAL": "0.2"}
    servers = [
        ServerProcess(tmp_path, env, database_url=fresh_postgres_url).start() for _ in range(2)
    ]
    try:
        live = await say(servers[0], rooms[0], "live")
        deadline = time.monotonic() + 60
        while sum(counts(servers[1]).values()) > 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert counts(servers[0]) == counts(servers[1]) == {rooms[0]: 1}
        assert texts(servers[1], rooms[0]) == ["live"] and live > 3000
        logged = [
            int(n)
            for server in servers
            for n in re.findall(r"retention: deleted (\d+) message", server.log())
        ]
        assert sum(logged) == 3000  # every message deleted once, whoever did it
    finally:
        for server in servers:
            server.stop()


async def echo_while(server: ServerProcess, done: object) -> tuple[float, int]:
    """Echo a message every 10 ms until `done()`: the worst echo time, and how many."""
    worst, echoes = 0.0, 0
    async with join(server.ws(unique_room())) as ws:
        while not done():  # type: ignore[operator]
            began = time.perf_counter()
            await ws.send(f"live {echoes}")
            assert await recv(ws) == f"You wrote: live {echoes}"
            worst = max(worst, time.perf_counter() - began)
            echoes += 1
            await asyncio.sleep(0.01)
    return worst, echoes


@pytest.mark.slow
async def test_live_messages_keep_flowing_while_the_server_prunes_100000_rows(
    tmp_path: Path,
) -> None:
    rooms = [unique_room() for _ in range(20)]
    env = {"CHAT_RATE_LIMIT": "0", "CHAT_RETENTION_DAYS": "30", "CHAT_RETENTION_INTERVAL": "2"}
    server = ServerProcess(tmp_path, env)
    seed(server.database_url, ndjson(tmp_path / "old.ndjson", rooms, 100_000))
    server.start()
    try:
        done = "retention: deleted 100000 message(s)"
        worst, echoes = await asyncio.wait_for(
            echo_while(server, lambda: done in server.log()), 120
        )
        assert echoes > 100  # from before the pass (2 s after the start) to its end
        assert worst < 1.0, f"an echo took {worst:.3f} s during the prune"
        print(f"worst echo {worst * 1000:.1f} ms over {echoes} echoes during the server's prune")
        assert sum(counts(server).values()) == echoes
    finally:
        server.stop()


async def test_live_messages_keep_flowing_while_prune_runs_beside_the_server(
    tmp_path: Path,
) -> None:
    rooms = [unique_room() for _ in range(20)]
    server = ServerProcess(tmp_path, {"CHAT_RATE_LIMIT": "0"})
    seed(server.database_url, ndjson(tmp_path / "old.ndjson", rooms, 20_000))
    server.start()
    try:
        pruning = asyncio.create_task(
            asyncio.to_thread(run_app, server.database_url, "prune", "--older-than", "30d")
        )
        worst, echoes = await echo_while(server, pruning.done)
        result = await pruning
        assert result.returncode == 0, result.stderr
        assert "deleted 20000 message(s)" in result.stdout
        assert echoes > 10  # the prune took a while, and messages went on meanwhile
        assert worst < 1.0, f"an echo took {worst:.3f} s during the prune"
        print(f"worst echo {worst * 1000:.1f} ms over {echoes} echoes beside `prune`")
        assert sum(counts(server).values()) == echoes
    finally:
        server.stop()
