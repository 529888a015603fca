"""`chat.v2.json`: JSON send frames and exactly-once sending by client key, on real servers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients import (
    closed_with,
    history,
    history_v2,
    join,
    join_json,
    join_v2,
    no_frame,
    recv,
    recv_json,
    send_v2,
)
from tests.support import ServerProcess, unique_room

pytestmark = pytest.mark.anyio


def new_key() -> str:
    return str(uuid.uuid4())


async def own_copy(ws: Any) -> dict[str, Any]:
    """The next frame, which must be this sender's own copy of a live message."""
    frame = await recv_json(ws)
    assert frame["type"] == "message" and frame["own"] is True and frame["history"] is False
    return frame


async def test_v2_is_negotiated_and_history_end_says_complete(server, room):
    async with join_v2(server.ws(room)) as ws:
        assert ws.subprotocol == "chat.v2.json"
        assert await history_v2(ws) == ([], {"type": "history_end", "complete": True})


async def test_v2_is_preferred_when_both_json_protocols_are_offered(server, room):
    async with join(server.ws(room), subprotocols=["chat.v1.json", "chat.v2.json"]) as ws:
        assert ws.subprotocol == "chat.v2.json"


async def test_v1_frames_stay_as_they_were(server, room):
    async with join_v2(server.ws(room)) as v2, join_json(server.ws(room)) as v1:
        await history_v2(v2)
        assert await recv_json(v1) == {"type": "history_end"}
        await v1.send("plain from v1")
        mine = await recv_json(v1)
        assert set(mine) == {
            "type", "id", "room_id", "text", "created_at", "author", "history", "own"
        }  # fmt: skip
        assert mine["own"] is True
        assert (await recv_json(v2))["text"] == "plain from v1"


async def test_a_send_frame_is_stored_and_echoed_with_its_key_to_the_sender_only(server, room):
    key = new_key()
    async with (
        join_v2(server.ws(room)) as a,
        join_v2(server.ws(room)) as b,
        join(server.ws(room)) as plain,
    ):
        await history_v2(a)
        await history_v2(b)
        await send_v2(a, "hello", key)
        mine = await own_copy(a)
        assert (mine["text"], mine["key"]) == ("hello", key)
        theirs = await recv_json(b)
        assert theirs["id"] == mine["id"] and theirs["own"] is False and "key" not in theirs
        assert await recv(plain) == "A client says: hello"
    stored = server.messages(room)
    assert [m["text"] for m in stored] == ["hello"]
    assert all("key" not in m and "client_key" not in m for m in stored)


async def test_unkeyed_sends_are_stored_every_time(server, room):
    async with join_v2(server.ws(room)) as a:
        await history_v2(a)
        await send_v2(a, "same")
        await a.send(json.dumps({"type": "send", "text": "same", "key": None, "extra": 1}))
        first, second = await own_copy(a), await own_copy(a)
        assert first["id"] != second["id"] and "key" not in first and "key" not in second
    assert [m["text"] for m in server.messages(room)] == ["same", "same"]


BAD_FRAMES = {
    "not JSON": "hello",
    "broken JSON": '{"type": "send", "text": "x"',
    "an array": '["send", "x"]',
    "a string": '"send"',
    "a number": "17",
    "null": "null",
    "no type": '{"text": "x"}',
    "another type": '{"type": "message", "text": "x"}',
    "no text": '{"type": "send"}',
    "text a number": '{"type": "send", "text": 5}',
    "text null": '{"type": "send", "text": null}',
    "empty key": '{"type": "send", "text": "x", "key": ""}',
    "key too long": json.dumps({"type": "send", "text": "x", "key": "k" * 65}),
    "key with a space": '{"type": "send", "text": "x", "key": "a b"}',
    "key with a dot": '{"type": "send", "text": "x", "key": "a.b"}',
    "key not ASCII": '{"type": "send", "text": "x", "key": "clé"}',
    "key a number": '{"type": "send", "text": "x", "key": 5}',
    "key a list": '{"type": "send", "text": "x", "key": ["a"]}',
    "lone surrogate": '{"type": "send", "text": "\\ud800"}',
}


@pytest.mark.parametrize("frame", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_anything_but_a_send_object_closes_with_1007_and_stores_nothing(server, room, frame):
    async with join_v2(server.ws(room)) as bad, join_v2(server.ws(room)) as other:
        await history_v2(bad)
        await history_v2(other)
        await bad.send(frame)
        assert await closed_with(bad) == 1007
        await send_v2(other, "still fine")
        assert (await own_copy(other))["text"] == "still fine"
    assert [m["text"] for m in server.messages(room)] == ["still fine"]


async def test_a_binary_frame_closes_a_v2_client_with_1003(server, room):
    async with join_v2(server.ws(room)) as ws:
        await history_v2(ws)
        await ws.send(b'{"type": "send", "text": "x"}')
        assert await closed_with(ws) == 1003
    assert server.messages(room) == []


async def test_the_size_limit_counts_the_text_not_its_json_escapes(start_server, room):
    server = start_server({"CHAT_MAX_MESSAGE_BYTES": "64"})
    async with join_v2(server.ws(room)) as ws:
        await history_v2(ws)
        await send_v2(ws, "\x01" * 64)  # 64 bytes of text, 384 of JSON
        await send_v2(ws, "   ")  # empty after all: ignored
        assert (await own_copy(ws))["text"] == "\x01" * 64
        await send_v2(ws, "é" * 33)  # 66 bytes
        assert await closed_with(ws) == 1009
    assert [m["text"] for m in server.messages(room)] == ["\x01" * 64]


async def test_a_key_resent_on_the_same_connection_is_stored_once(server, room):
    key = new_key()
    async with join_v2(server.ws(room)) as a, join_v2(server.ws(room)) as watcher:
        await history_v2(a)
        await history_v2(watcher)
        await send_v2(a, "once", key)
        first = await own_copy(a)
        await send_v2(a, "once", key)
        await send_v2(a, "a different text, same key", key)
        again = [await own_copy(a), await own_copy(a)]
        for frame in again:
            assert frame == first
        await send_v2(a, "after")
        assert (await own_copy(a))["text"] == "after"
        seen = [await recv_json(watcher), await recv_json(watcher)]
        assert [f["text"] for f in seen] == ["once", "after"]
        assert await no_frame(watcher)
    assert [m["text"] for m in server.messages(room)] == ["once", "after"]


async def test_retries_in_one_batch_store_one_row(server, room):
    key = new_key()
    async with join_v2(server.ws(room)) as a, join_v2(server.ws(room)) as watcher:
        await history_v2(a)
        await history_v2(watcher)
        frame = json.dumps({"type": "send", "text": "burst", "key": key})
        for _ in range(5):
            await a.send(frame)  # no await between them on the server: one batch, mostly
        copies = [await own_copy(a) for _ in range(5)]
        assert len({(c["id"], c["key"], c["text"]) for c in copies}) == 1
        assert (await recv_json(watcher))["id"] == copies[0]["id"]
        assert await no_frame(watcher)
    assert [m["text"] for m in server.messages(room)] == ["burst"]


async def test_a_key_resent_on_a_new_connection_gets_the_stored_message(server, room):
    key = new_key()
    async with join_v2(server.ws(room)) as watcher:
        await history_v2(watcher)
        async with join_v2(server.ws(room)) as a:
            await history_v2(a)
            await send_v2(a, "first try", key)
            first = await own_copy(a)
        since = f"?since={first['id'] - 1}"
        async with join_v2(server.ws(room, since)) as b:
            replay, _ = await history_v2(b)
            assert [m["id"] for m in replay] == [first["id"]] and "key" not in replay[0]
            await send_v2(b, "second try, edited", key)
            assert await own_copy(b) == first
        assert (await recv_json(watcher))["id"] == first["id"]
        assert await no_frame(watcher)
    assert [m["text"] for m in server.messages(room)] == ["first try"]


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
async def test_a_key_resent_after_a_server_restart_is_stored_once(
    tmp_path: Path, room: str, stop: str
) -> None:
    key = new_key()
    first_server = ServerProcess(tmp_path).start()
    try:
        async with join_v2(first_server.ws(room)) as a:
            await history_v2(a)
            await send_v2(a, "before the restart", key)
            first = await own_copy(a)
    finally:
        if stop == "sigkill":
            first_server.kill()
        else:
            first_server.stop()
    second_server = ServerProcess(tmp_path).start()
    try:
        async with join_v2(second_server.ws(room)) as watcher, join_v2(second_server.ws(room)) as b:
            await history_v2(watcher)
            await history_v2(b)
            await send_v2(b, "before the restart", key)
            assert await own_copy(b) == first
            assert await no_frame(watcher)
        assert [m["id"] for m in second_server.messages(room)] == [first["id"]]
    finally:
        second_server.stop()


async def test_two_connections_sending_one_key_at_once_store_it_once(server, room):
    key = new_key()
    async with (
        join_v2(server.ws(room)) as a,
        join_v2(server.ws(room)) as b,
        join_v2(server.ws(room)) as watcher,
    ):
        for ws in (a, b, watcher):
            await history_v2(ws)
        await asyncio.gather(send_v2(a, "twice", key), send_v2(b, "twice", key))
        mine_a, mine_b = await own_frame(a), await own_frame(b)
        assert mine_a == mine_b and mine_a["key"] == key
        assert (await recv_json(watcher))["id"] == mine_a["id"]
        assert await no_frame(watcher)
    assert [m["text"] for m in server.messages(room)] == ["twice"]


async def own_frame(ws: Any) -> dict[str, Any]:
    """The own copy among a connection's next frames (the other sender's broadcast may come
    first: for this connection, the winner of a race is someone else's message)."""
    while True:
        frame = await recv_json(ws)
        if frame["own"]:
            assert "key" in frame
            return frame
        assert "key" not in frame


async def test_a_hundred_concurrent_retries_of_one_key_store_one_row(server, room):
    key = new_key()
    clients = [await join_v2(server.ws(room)).__aenter__() for _ in range(100)]
    try:
        for ws in clients:
            await history_v2(ws)
        await asyncio.gather(*(send_v2(ws, "hundred", key) for ws in clients))
        copies = await asyncio.gather(*(own_frame(ws) for ws in clients))
    finally:
        await asyncio.gather(*(ws.close() for ws in clients))
    assert len({(c["id"], c["created_at"], c["text"]) for c in copies}) == 1
    assert [m["text"] for m in server.messages(room)] == ["hundred"]


async def test_the_same_key_in_two_rooms_is_two_messages(server, room):
    key, other = new_key(), unique_room()
    async with join_v2(server.ws(room)) as a, join_v2(server.ws(other)) as b:
        await history_v2(a)
        await history_v2(b)
        await send_v2(a, "here", key)
        await send_v2(b, "there", key)
        assert (await own_copy(a))["text"] == "here"
        assert (await own_copy(b))["text"] == "there"
    assert [m["text"] for m in server.messages(room)] == ["here"]
    assert [m["text"] for m in server.messages(other)] == ["there"]


async def test_a_since_replay_cut_by_its_cap_says_incomplete(server, room):
    async with join(server.ws(room)) as plain:
        for i in range(1003):
            await plain.send(f"m{i}")
        for _ in range(1003):
            await recv(plain)
    everything = server.all_messages(room)
    async with join_v2(server.ws(room, "?since=0")) as ws:
        replay, end = await history_v2(ws)
        assert end == {"type": "history_end", "complete": False}
        assert [m["id"] for m in replay] == [m["id"] for m in everything[-1000:]]
    async with join_v2(server.ws(room, f"?since={everything[2]['id']}")) as ws:
        replay, end = await history_v2(ws)
        assert end == {"type": "history_end", "complete": True} and len(replay) == 1000
    async with join_json(server.ws(room, "?since=0")) as v1:
        assert len(await history(v1)) == 1000  # and v1's history_end is unchanged:
    async with join_json(server.ws(room, "?since=0")) as v1:
        frames = [await recv_json(v1) for _ in range(1001)]
        assert frames[-1] == {"type": "history_end"}


async def test_keys_never_reach_rest(server, room):
    key = new_key()
    async with join_v2(server.ws(room)) as a:
        await history_v2(a)
        await send_v2(a, "with a key", key)
        await own_copy(a)
    for path in (f"/rooms/{room}/messages", f"/rooms/{room}/messages?after=0", "/rooms"):
        response = httpx.get(f"{server.http}{path}", timeout=10)
        assert key not in response.text and '"key"' not in response.text


@pytest.fixture(scope="module")
def pg_pair(
    tmp_path_factory: pytest.TempPathFactory, services_env: dict[str, str]
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two processes on one PostgreSQL database, fanned out through Redis."""
    workdir, url = tmp_path_factory.mktemp("pg-pair"), services_env["CHAT_DATABASE_URL"]
    env = {**services_env, "CHAT_RATE_LIMIT": "0"}
    first = ServerProcess(workdir, env, database_url=url).start()  # it migrates the schema
    try:
        second = ServerProcess(workdir, env, database_url=url).start()
    except Exception:
        first.stop()
        raise
    yield first, second
    second.stop()
    first.stop()


@pytest.mark.services
async def test_retries_on_two_postgresql_processes_store_one_row(pg_pair, room):
    a_server, b_server = pg_pair
    key = new_key()
    watchers = [await join_v2(s.ws(room)).__aenter__() for s in pg_pair]
    try:
        for watcher in watchers:
            await history_v2(watcher)
        async with join_v2(a_server.ws(room)) as a:
            await history_v2(a)
            await send_v2(a, "on A", key)
            first = await own_copy(a)
        async with join_v2(b_server.ws(room)) as b:
            await history_v2(b)
            await send_v2(b, "retried on B", key)
            assert await own_copy(b) == first
        # 100 concurrent retries of a new key, half on each process.
        key = new_key()
        clients = [await join_v2(pg_pair[i % 2].ws(room)).__aenter__() for i in range(100)]
        try:
            for ws in clients:
                await history_v2(ws)
            await asyncio.gather(*(send_v2(ws, "hundred", key) for ws in clients))
            copies = await asyncio.gather(*(own_frame(ws) for ws in clients))
        finally:
            await asyncio.gather(*(ws.close() for ws in clients))
        assert len({(c["id"], c["created_at"], c["text"]) for c in copies}) == 1
        for watcher in watchers:
            seen = [await recv_json(watcher), await recv_json(watcher)]
            assert [m["id"] for m in seen] == [first["id"], copies[0]["id"]]
            assert all("key" not in m for m in seen)
            assert await no_frame(watcher, 0.5)
    finally:
        for watcher in watchers:
            await watcher.close()
    assert [m["text"] for m in a_server.messages(room)] == ["on A", "hundred"]
