"""Several server processes on one PostgreSQL database, fanned out through Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.clients import closed_with, history, join, join_json, recv, recv_json
from tests.metrics_support import scrape, value, wait_for_metric
from tests.services import RedisServer, kill_subscribers
from tests.support import ROOT, ServerProcess, unique_room

pytestmark = pytest.mark.anyio
services = pytest.mark.services

Pair = tuple[ServerProcess, ServerProcess]


def start_pair(workdir: Path, env: dict[str, str]) -> Pair:
    # One after the other: the first brings the schema to head, the second finds it there.
    first = ServerProcess(workdir, env, database_url=env["CHAT_DATABASE_URL"]).start()
    try:
        second = ServerProcess(workdir, env, database_url=env["CHAT_DATABASE_URL"]).start()
    except Exception:
        first.stop()
        raise
    return first, second


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, services_env: dict[str, str]) -> Iterator[Pair]:
    """Two processes serving the same rooms."""
    prefix = services_env["CHAT_REDIS_CHANNEL_PREFIX"] + "-pair"  # cut by a test below
    env = {**services_env, "CHAT_REDIS_CHANNEL_PREFIX": prefix}
    servers = start_pair(tmp_path_factory.mktemp("pair"), env)
    yield servers
    for server in servers:
        server.stop()


def wait_for_log(server: ServerProcess, text: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log():
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not logged in {timeout}s:\n{server.log()}")
        time.sleep(0.05)


@services
async def test_clients_on_two_processes_chat_both_ways(pair: Pair, room: str) -> None:
    a_server, b_server = pair
    async with (
        join_json(a_server.ws(room)) as a,
        join_json(b_server.ws(room)) as b,
        join(b_server.ws(room)) as plain,
    ):
        await history(a)
        await history(b)
        await a.send("from A")
        mine, theirs = await recv_json(a), await recv_json(b)
        assert (mine["text"], mine["own"], theirs["text"], theirs["own"]) == (
            "from A",
            True,
            "from A",
            False,
        )
        assert await recv(plain) == "A client says: from A"
        await b.send("from B")
        theirs, mine = await recv_json(a), await recv_json(b)
        assert (mine["text"], mine["own"], theirs["text"], theirs["own"]) == (
            "from B",
            True,
            "from B",
            False,
        )
        assert await recv(plain) == "A client says: from B"
        await plain.send("plain on B")
        assert await recv(plain) == "You wrote: plain on B"
        assert (await recv_json(a))["text"] == "plain on B"
    assert [m["text"] for m in a_server.messages(room)] == ["from A", "from B", "plain on B"]
    assert b_server.messages(room) == a_server.messages(room)


@services
async def test_concurrent_commits_on_two_processes_reach_every_observer_in_id_order(
    pair: Pair, room: str
) -> None:
    per_sender, senders_per_process = 80, 3
    servers = list(pair)
    watchers = [await join_json(s.ws(room)).__aenter__() for s in servers for _ in range(2)]
    senders = [
        await join(s.ws(room)).__aenter__() for s in servers for _ in range(senders_per_process)
    ]
    try:
        for watcher in watchers:
            await history(watcher)

        async def send_all(n: int) -> None:
            for i in range(per_sender):
                await senders[n].send(f"s{n}-{i}")
                await asyncio.sleep(0.001)  # many small batches: many chances to interleave

        total = per_sender * len(senders)
        sending = asyncio.gather(*(send_all(n) for n in range(len(senders))))
        seen = await asyncio.gather(*(ids_until_quiet(w, total) for w in watchers))
        await sending
    finally:
        for ws in watchers + senders:
            await ws.close()
    listed = [m["id"] for m in servers[0].all_messages(room)]
    assert len(listed) == total
    for ids in seen:
        assert ids == listed


async def ids_until_quiet(ws: ClientConnection, total: int) -> list[int]:
    """The ids of the live frames received, up to `total` or until none came for 3 s."""
    ids: list[int] = []
    while len(ids) < total:
        try:
            ids.append((await recv_json(ws, timeout=3.0))["id"])
        except TimeoutError:
            break
    return ids


@services
async def test_a_joiner_on_one_process_gets_every_message_of_the_other_exactly_once(
    pair: Pair, room: str
) -> None:
    sending, joining = pair
    stop = asyncio.Event()

    async def keep_sending() -> None:
        async with join(sending.ws(room)) as ws:
            i = 0
            while not stop.is_set():
                await ws.send(f"m{i}")
                i += 1
                await asyncio.sleep(0.003)

    async def joiner(delay: float) -> list[int]:
        await asyncio.sleep(delay)
        async with join_json(joining.ws(room)) as ws:
            ids = []
            while True:
                try:
                    frame = await recv_json(ws, timeout=1.5 if stop.is_set() else 10.0)
                except TimeoutError:
                    return ids
                if frame["type"] == "message":
                    ids.append(frame["id"])

    sender = asyncio.create_task(keep_sending())
    joiners = [asyncio.create_task(joiner(0.08 * k)) for k in range(1, 8)]
    await asyncio.sleep(1.0)
    stop.set()
    await sender
    results = await asyncio.gather(*joiners)
    all_ids = [m["id"] for m in sending.all_messages(room)]
    for ids in results:
        start = all_ids.index(ids[0])
        assert ids == all_ids[start:], "a message was missed, repeated or reordered at the join"


@services
async def test_a_cut_subscriber_closes_its_clients_with_1012_and_fan_out_resumes(
    pair: Pair, room: str
) -> None:
    a_server, b_server = pair
    async with join(a_server.ws(room)) as a, join(b_server.ws(room)) as b:
        prefix = a_server.env["CHAT_REDIS_CHANNEL_PREFIX"]
        assert kill_subscribers(a_server.env["CHAT_REDIS_URL"], prefix) == 2
        assert await closed_with(a) == 1012
        assert await closed_with(b) == 1012
    for server in (a_server, b_server):
        wait_for_log(server, "Redis link restored")
    await chat_across(a_server, b_server, room, "after the cut")


async def chat_across(
    a_server: ServerProcess, b_server: ServerProcess, room: str, text: str, since: int = 0
) -> list[str]:
    """`text` sent on A reaches a client on B live; returns B's replay since `since`."""
    async with (
        join_json(a_server.ws(room)) as a,
        join_json(b_server.ws(room, f"?since={since}")) as b,
    ):
        await history(a)
        replay = [f["text"] for f in await history(b)]
        await a.send(text)
        assert (await recv_json(b))["text"] == text
    return replay


@services
async def test_redis_restart_keeps_storing_closes_clients_with_1012_and_fan_out_resumes(
    tmp_path: Path, services_env: dict[str, str], private_redis: RedisServer
) -> None:
    env = {**services_env, "CHAT_REDIS_URL": private_redis.url}
    a_server, b_server = start_pair(tmp_path, env)
    room = unique_room()
    try:
        async with join(a_server.ws(room)) as a, join_json(b_server.ws(room)) as b:
            await history(b)
            await a.send("before")
            last_seen = (await recv_json(b))["id"]
            private_redis.stop()
            assert await closed_with(a) == 1012
            assert await closed_with(b) == 1012
        async with join(a_server.ws(room)) as during:
            await during.send("while Redis is down")
            deadline = time.monotonic() + 10
            while [m["text"] for m in b_server.messages(room)] != ["before", "while Redis is down"]:
                assert time.monotonic() < deadline, "the message sent during the outage is lost"
                await asyncio.sleep(0.05)
            private_redis.start()
            # It joined while nothing was fanned out: it is told to resume.
            assert await closed_with(during) == 1012
        for server in (a_server, b_server):
            wait_for_log(server, "Redis link restored")
        replay = await chat_across(a_server, b_server, room, "after", since=last_seen)
        assert replay == ["while Redis is down"]
        for server in (a_server, b_server):
            log = server.log()
            assert log.count("Redis link lost") == 1, log
            assert log.count("Redis link restored") == 1, log
            assert log.count("publishing to Redis failed") <= 1, log
    finally:
        a_server.stop()
        b_server.stop()


def run_app(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_workers_over_one_are_refused_without_redis(tmp_path: Path) -> None:
    env = {"CHAT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}", "CHAT_REDIS_URL": ""}
    result = run_app(["--workers", "2", "--port", "0"], env)
    assert result.returncode == 2
    assert "CHAT_REDIS_URL" in result.stderr
    assert not (tmp_path / "chat.db").exists()


def test_workers_over_one_are_refused_on_sqlite(tmp_path: Path) -> None:
    env = {
        "CHAT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        "CHAT_REDIS_URL": "redis://127.0.0.1:1/0",
    }
    result = run_app(["--workers", "2", "--port", "0"], env)
    assert result.returncode == 2
    assert "PostgreSQL" in result.stderr


@services
async def test_workers_2_serve_one_port_and_drain_on_sigterm(
    tmp_path: Path, services_env: dict[str, str]
) -> None:
    server = ServerProcess(
        tmp_path,
        services_env,
        database_url=services_env["CHAT_DATABASE_URL"],
        command=[sys.executable, "-m", "app", "--workers", "2"],
    ).start()
    room = unique_room()
    try:
        assert len(worker_pids(server, 2)) == 2
        clients = [await join_json(server.ws(room)).__aenter__() for _ in range(6)]
        for ws in clients:
            await history(ws)
        for n, sender in enumerate(clients):
            await sender.send(f"from {n}")
            for m, ws in enumerate(clients):
                frame = await recv_json(ws)
                assert (frame["text"], frame["own"]) == (f"from {n}", m == n)
        server.signal(signal.SIGTERM)
        assert [await closed_with(ws) for ws in clients] == [1001] * len(clients)
        assert server.wait(20) == 0
    finally:
        server.stop()


def worker_pids(server: ServerProcess, n: int, timeout: float = 30.0) -> set[str]:
    """The pids of the workers that finished starting (each logs its own start-up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = server.log()
        if log.count("Application startup complete") >= n:
            return set(re.findall(r"Started server process \[(\d+)\]", log))
        time.sleep(0.1)
    raise AssertionError(f"{n} workers did not start:\n{server.log()}")


class Follower:
    """A JSON client following a room from its start: the ids it was delivered, in order.
    Closed with 1012, it resumes with `?since=` the last id it has, as the page does."""

    def __init__(self, server: ServerProcess, room: str) -> None:
        self.server, self.room = server, room
        self.ids: list[int] = []
        self.resumed = 0

    async def follow(self, stop: asyncio.Event) -> list[int]:
        """Until `stop` is set and then 3 s pass without a frame (or 30 s without one before)."""
        while True:
            since = self.ids[-1] if self.ids else 0
            async with join_json(self.server.ws(self.room, f"?since={since}")) as ws:
                try:
                    await self._receive(ws, stop)
                    return self.ids
                except ConnectionClosed:
                    assert ws.close_code == 1012, ws.close_code
                    self.resumed += 1

    async def _receive(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        silent = silent_after_stop = 0.0
        while silent < 30.0 and silent_after_stop < 3.0:
            try:
                frame = await recv_json(ws, timeout=0.25)
            except TimeoutError:
                silent += 0.25
                silent_after_stop += 0.25 if stop.is_set() else 0.0
                continue
            silent = silent_after_stop = 0.0
            if frame["type"] == "message":
                self.ids.append(frame["id"])


async def keep_sending(server: ServerProcess, room: str, tag: str, stop: asyncio.Event) -> None:
    """Send until stopped, reconnecting after a 1012 (a client of a process that lost Redis)."""
    i = 0
    while not stop.is_set():
        async with join(server.ws(room, "?since=0")) as ws:
            with contextlib.suppress(ConnectionClosed):
                while not stop.is_set():
                    await ws.send(f"{tag}{i}")
                    i += 1
                    await asyncio.sleep(0.01)


def assert_complete(followers: list[Follower], server: ServerProcess, room: str) -> None:
    stored = [m["id"] for m in server.all_messages(room)]
    assert len(stored) > 20
    for follower in followers:
        holes = sorted(set(stored) - set(follower.ids))
        assert not holes, f"{len(holes)} message(s) never delivered, e.g. {holes[:5]}"
        assert follower.ids == stored, "delivered out of order or twice"


@services
@pytest.mark.slow
async def test_a_killed_subscriber_leaves_no_hole_for_the_clients_of_either_process(
    tmp_path: Path, services_env: dict[str, str], private_redis: RedisServer
) -> None:
    env = {**services_env, "CHAT_REDIS_URL": private_redis.url}
    a_server, b_server = start_pair(tmp_path, env)
    room = unique_room()
    stop_sending, stop_following = asyncio.Event(), asyncio.Event()
    try:
        followers = [Follower(s, room) for s in (a_server, b_server) for _ in range(2)]
        following = [asyncio.create_task(f.follow(stop_following)) for f in followers]
        await asyncio.sleep(1.0)
        senders = [
            asyncio.create_task(keep_sending(s, room, tag, stop_sending))
            for s, tag in ((a_server, "a"), (b_server, "b"))
        ]
        # A's subscriber is cut again and again while both processes keep committing.
        admin = redis.Redis.from_url(private_redis.url)
        name = f"{env['CHAT_REDIS_CHANNEL_PREFIX']}:subscriber:{a_server.proc.pid}"
        for _ in range(20):
            await asyncio.sleep(0.15)
            for client in admin.client_list(_type="pubsub"):
                if client.get("name") == name:
                    admin.client_kill_filter(_id=client["id"])
        await asyncio.sleep(1.0)
        stop_sending.set()
        await asyncio.gather(*senders)
        stop_following.set()
        await asyncio.gather(*following)
        assert_complete(followers, a_server, room)
    finally:
        a_server.stop()
        b_server.stop()


@services
@pytest.mark.slow
async def test_a_publish_delayed_past_its_timeout_leaves_no_hole(
    tmp_path: Path, services_env: dict[str, str], private_redis: RedisServer
) -> None:
    env = {**services_env, "CHAT_REDIS_URL": private_redis.url}
    a_server, b_server = start_pair(tmp_path, env)
    room = unique_room()
    stop_following = asyncio.Event()
    try:
        followers = [Follower(s, room) for s in (a_server, b_server) for _ in range(2)]
        following = [asyncio.create_task(f.follow(stop_following)) for f in followers]
        async with join(a_server.ws(room)) as a, join(b_server.ws(room)) as b:
            for i in range(10):
                await (a if i % 2 else b).send(f"before {i}")
            await asyncio.sleep(1.0)
            admin = redis.Redis.from_url(private_redis.url)
            admin.execute_command("CLIENT", "PAUSE", "3500", "WRITE")
            await a.send("delayed on A")  # its PUBLISH waits past its 2 s timeout
            await asyncio.sleep(2.6)
            await b.send("published by B after it")  # waits less than its timeout
            await asyncio.sleep(1.5)
            async with join(b_server.ws(room)) as b2:
                for i in range(10):
                    await b2.send(f"after {i}")
                    await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        stop_following.set()
        await asyncio.gather(*following)
        assert_complete(followers, a_server, room)
    finally:
        a_server.stop()
        b_server.stop()


def worker_of(ws: ClientConnection, pids: set[str]) -> str:
    """The pid of the worker holding this client's socket."""
    port = ws.local_address[1]
    for pid in pids:
        sockets = psutil.Process(int(pid)).net_connections()
        if any(c.raddr and c.raddr.port == port for c in sockets):
            return pid
    raise AssertionError(f"no worker holds the connection from port {port}")


@services
async def test_workers_2_one_scrape_counts_the_connections_and_messages_of_both(
    tmp_path: Path, services_env: dict[str, str]
) -> None:
    server = ServerProcess(
        tmp_path,
        services_env,
        database_url=services_env["CHAT_DATABASE_URL"],
        command=[sys.executable, "-m", "app", "--workers", "2"],
    ).start()
    room = unique_room()
    clients: list[ClientConnection] = []
    try:
        pids = worker_pids(server, 2)
        shared = {psutil.Process(int(pid)).environ()["PROMETHEUS_MULTIPROC_DIR"] for pid in pids}
        assert len(shared) == 1
        held: dict[str, list[ClientConnection]] = {pid: [] for pid in pids}
        # Connect in bursts until each worker holds some of them (the kernel picks the worker).
        while min(len(c) for c in held.values()) < 2:
            assert len(clients) < 200, {pid: len(c) for pid, c in held.items()}
            burst = await asyncio.gather(*(join(server.ws(room)).__aenter__() for _ in range(8)))
            for ws in burst:
                held[worker_of(ws, pids)].append(ws)
            clients.extend(burst)
        before = value(scrape(server), "chat_messages_stored_total")
        for ws in (held_by[0] for held_by in held.values()):
            await ws.send("counted")
        total = len(clients)
        # Each worker also samples itself every second: any worker's answer holds both.
        for _ in range(6):
            connections = await asyncio.to_thread(
                wait_for_metric, server, "chat_connections", lambda v: v == total
            )
            assert connections == total
        stored = await asyncio.to_thread(
            wait_for_metric, server, "chat_messages_stored_total", lambda v: v == before + 2
        )
        assert stored == before + 2
        assert value(scrape(server), "chat_broker_link_up", broker="redis") == 1
    finally:
        for ws in clients:
            await ws.close()
        server.stop()
    assert not Path(shared.pop()).exists(), "the metrics directory outlived the server"
