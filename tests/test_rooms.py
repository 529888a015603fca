"""The tutorial's room flow, made persistent: through a real server and real sockets."""

import asyncio

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.clients import history, join, join_json, no_frame, recv, recv_json, recv_n
from tests.support import faulty_server_command, unique_room

pytestmark = pytest.mark.anyio


async def test_sender_gets_you_wrote_and_the_room_gets_a_client_says(server, room):
    async with join(server.ws(room)) as a, join(server.ws(room)) as b, join(server.ws(room)) as c:
        await a.send("hello")
        assert await recv(a) == "You wrote: hello"
        assert await recv(b) == "A client says: hello"
        assert await recv(c) == "A client says: hello"


async def test_rooms_are_isolated(server, room):
    other = unique_room("other")
    async with join(server.ws(room)) as a, join(server.ws(other)) as x:
        await a.send("only for my room")
        assert await recv(a) == "You wrote: only for my room"
        assert await no_frame(x)
    assert server.messages(other) == []


async def test_text_is_stored_exactly_as_sent(server, room):
    text = "  leading and trailing spaces\tand a tab  "
    async with join(server.ws(room)) as a:
        await a.send(text)
        assert await recv(a) == f"You wrote: {text}"
    assert [m["text"] for m in server.messages(room)] == [text]


async def test_empty_and_whitespace_only_text_is_ignored(server, room):
    async with join(server.ws(room)) as a, join(server.ws(room)) as b:
        for blank in ["", " ", "\t\n", "\u3000"]:
            await a.send(blank)
        await a.send("real")
        assert await recv(a) == "You wrote: real"
        assert await recv(b) == "A client says: real"
    assert [m["text"] for m in server.messages(room)] == ["real"]


async def test_joiner_receives_the_stored_history_oldest_first(server, room):
    async with join(server.ws(room)) as a:
        for i in range(3):
            await a.send(f"m{i}")
        await recv_n(a, 3)
    async with join(server.ws(room)) as b:
        assert await recv_n(b, 3) == [f"A client says: m{i}" for i in range(3)]
        assert await no_frame(b)


async def test_replay_count_follows_the_setting(start_server, room):
    srv = start_server({"CHAT_HISTORY_REPLAY": "3"})
    async with join(srv.ws(room)) as a:
        for i in range(5):
            await a.send(f"m{i}")
        await recv_n(a, 5)
    async with join(srv.ws(room)) as b:
        assert await recv_n(b, 3) == [f"A client says: m{i}" for i in (2, 3, 4)]
        assert await no_frame(b)
        await b.send("live")
        assert await recv(b) == "You wrote: live"


async def test_replay_zero_sends_no_history(start_server, room):
    srv = start_server({"CHAT_HISTORY_REPLAY": "0"})
    async with join(srv.ws(room)) as a:
        await a.send("old")
        await recv(a)
    async with join_json(srv.ws(room)) as b:
        assert await history(b) == []


@pytest.mark.parametrize("replay", ["0", "3"])
async def test_a_message_committed_during_the_join_reaches_the_joiner_once(
    start_server, room, replay
):
    # The joiner's history read is slowed down: a message is committed while it is under way.
    srv = start_server(
        {"CHAT_HISTORY_REPLAY": replay, "CHAT_TEST_SNAPSHOT_DELAY": "1.0"},
        command=faulty_server_command(),
    )
    async with join_json(srv.ws(room)) as sender:
        await history(sender)
        await sender.send("before")
        assert (await recv_json(sender))["text"] == "before"
        async with join_json(srv.ws(room)) as joiner:
            await asyncio.sleep(0.3)  # registered, its snapshot not read yet
            await sender.send("during the join")
            assert (await recv_json(sender))["text"] == "during the join"
            await sender.send("after")
            frames = []
            while not frames or frames[-1].get("text") != "after":
                frames.append(await recv_json(joiner))
    # Exactly once, in the replay or live, in order.
    seen = [f["text"] for f in frames if f["type"] == "message"]
    assert seen == (
        ["during the join", "after"] if replay == "0" else ["before", "during the join", "after"]
    )


async def test_since_replays_everything_after_the_id(server, room):
    async with join(server.ws(room)) as a:
        for i in range(60):
            await a.send(f"m{i}")
        await recv_n(a, 60)
    ids = [m["id"] for m in server.messages(room, limit=100)]
    async with join_json(server.ws(room, f"?since={ids[4]}")) as b:
        frames = await history(b)
    assert [f["id"] for f in frames] == ids[5:]
    assert [f["text"] for f in frames] == [f"m{i}" for i in range(5, 60)]
    assert all(f["history"] for f in frames)
    async with join_json(server.ws(room, f"?since={ids[-1]}")) as c:
        assert await history(c) == []
    async with join_json(server.ws(room, "?since=0")) as d:
        assert len(await history(d)) == 60  # more than CHAT_HISTORY_REPLAY


@pytest.mark.parametrize("since", ["-1", "abc", "1.5", "", str(2**63)])
async def test_a_bad_since_is_refused(server, room, since):
    with pytest.raises(InvalidStatus):
        async with join(server.ws(room, f"?since={since}")) as ws:
            await recv(ws, 2)
    assert server.messages(room) == []


@pytest.mark.parametrize("bad", ["a" * 65, "sp%20ace", "%C3%A9", "semi;colon", ".", ".."])
async def test_a_bad_room_id_is_refused(server, bad):
    with pytest.raises((InvalidStatus, Exception)) as info:
        async with join(server.ws(bad)) as ws:
            await ws.send("stored?")
            await recv(ws, 2)
    if not isinstance(info.value, InvalidStatus):
        assert getattr(info.value, "rcvd", None) is not None and info.value.rcvd.code == 1008
    rooms = httpx.get(f"{server.http}/rooms", params={"limit": 1000}).json()
    assert all(r["room_id"] not in {bad, "sp ace", "é"} for r in rooms)


async def test_json_frames_mark_history_own_and_the_end_of_history(server, room):
    async with join(server.ws(room)) as a:
        await a.send("before")
        await recv(a)
    async with join_json(server.ws(room)) as b, join_json(server.ws(room)) as c:
        replay = await history(b)
        assert [(f["type"], f["text"], f["history"], f["own"]) for f in replay] == [
            ("message", "before", True, False)
        ]
        assert replay[0]["room_id"] == room
        assert replay[0]["created_at"].endswith("Z")
        await history(c)
        await b.send("mine")
        own = await recv_json(b)
        other = await recv_json(c)
        assert (own["own"], own["history"], own["text"]) == (True, False, "mine")
        assert (other["own"], other["history"], other["text"]) == (False, False, "mine")
        assert own["id"] == other["id"] > replay[0]["id"]
    stored = server.messages(room)
    assert stored[-1] == {k: own[k] for k in ("id", "room_id", "text", "created_at", "author")}
    assert own["author"] is None and replay[0]["author"] is None


async def test_an_unrequested_subprotocol_is_not_selected(server, room):
    async with join(server.ws(room)) as a:
        assert a.subprotocol is None
    async with join_json(server.ws(room)) as b:
        assert b.subprotocol == "chat.v1.json"


async def test_one_order_under_concurrent_senders_matches_the_rest_listing(server, room):
    senders, per_sender = 5, 60
    async with join_json(server.ws(room)) as watch1, join_json(server.ws(room)) as watch2:
        await history(watch1)
        await history(watch2)
        clients = [await join(server.ws(room)).__aenter__() for _ in range(senders)]
        try:

            async def send_all(n: int) -> None:
                for i in range(per_sender):
                    await clients[n].send(f"s{n}-{i}")

            await asyncio.gather(*(send_all(n) for n in range(senders)))
            total = senders * per_sender
            seen1 = [await recv_json(watch1) for _ in range(total)]
            seen2 = [await recv_json(watch2) for _ in range(total)]
        finally:
            for client in clients:
                await client.close()
    listed = server.messages(room, limit=1000)
    assert [f["id"] for f in seen1] == [m["id"] for m in listed] == [f["id"] for f in seen2]
    assert [f["text"] for f in seen1] == [m["text"] for m in listed]
    for n in range(senders):  # each sender's own messages kept their order too
        mine = [f["text"] for f in seen1 if f["text"].startswith(f"s{n}-")]
        assert mine == [f"s{n}-{i}" for i in range(per_sender)]


async def test_a_joiner_during_continuous_sending_gets_every_message_exactly_once(server, room):
    stop = asyncio.Event()

    async def keep_sending(n: int) -> None:
        async with join(server.ws(room)) as ws:
            i = 0
            while not stop.is_set():
                await ws.send(f"c{n}-{i}")
                i += 1
                await asyncio.sleep(0.002)
            await asyncio.sleep(0.5)  # let the last echoes arrive before closing

    async def joiner(delay: float) -> list[int]:
        await asyncio.sleep(delay)
        async with join_json(server.ws(room)) as ws:
            ids = []
            while True:
                try:
                    frame = await recv_json(ws, timeout=1.0 if stop.is_set() else 10.0)
                except TimeoutError:
                    return ids
                if frame["type"] == "message":
                    ids.append(frame["id"])

    senders = [asyncio.create_task(keep_sending(n)) for n in range(3)]
    joiners = [asyncio.create_task(joiner(0.05 * k)) for k in range(1, 12)]
    await asyncio.sleep(1.2)
    stop.set()
    await asyncio.gather(*senders)
    results = await asyncio.gather(*joiners)
    all_ids = [m["id"] for m in server.all_messages(room)]
    assert len(all_ids) > 100
    for ids in results:
        assert len(ids) == len(set(ids)), "a message arrived twice"
        assert ids == sorted(ids), "out of order"
        start = all_ids.index(ids[0])
        assert ids == all_ids[start:], "a message committed during the join was missed"


async def test_a_since_beyond_the_newest_id_still_gets_what_comes_next(server, room):
    # A page resuming against a database that was reset holds a `since` from the old one.
    async with join_json(server.ws(room, "?since=999999999")) as stale, join(server.ws(room)) as a:
        assert await history(stale) == []
        await a.send("new")
        frame = await recv_json(stale)
        assert (frame["text"], frame["history"]) == ("new", False)
