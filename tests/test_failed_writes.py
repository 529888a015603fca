"""A message the database refuses fails its own sender only: the batch it came in is retried
in parts, and everyone else's messages in it are stored and shown."""

import asyncio

import pytest

from tests.clients import closed_with, join, no_frame, recv
from tests.support import faulty_server_command, unique_room

pytestmark = pytest.mark.anyio


async def test_a_refused_message_fails_only_its_sender_and_the_rest_of_its_batch_is_stored(
    start_server,
):
    srv = start_server(
        {
            "CHAT_TEST_POISON_TEXT": "poison",
            # Each write waits a little: what arrives meanwhile gathers into the next batch.
            "CHAT_TEST_WRITE_DELAY": "0.5",
            "CHAT_RATE_LIMIT": "0",
        },
        command=faulty_server_command(),
    )
    rooms = [unique_room() for _ in range(4)]
    async with (
        join(srv.ws(rooms[0])) as poisoner,
        join(srv.ws(rooms[0])) as watcher,
    ):
        senders = [await join(srv.ws(r)).__aenter__() for r in rooms]
        try:
            await watcher.send("first")  # its write is under way while the rest arrive
            await asyncio.sleep(0.2)  # (taken by the writer within that even on a loaded host)
            await poisoner.send("poison")
            await poisoner.send("after the poison")
            for n, sender in enumerate(senders):
                await sender.send(f"ok {n}")
            assert await closed_with(poisoner) == 1011
            assert await recv(watcher) == "You wrote: first"
            assert await recv(senders[0]) == "A client says: first"  # it shares the room
            for n, sender in enumerate(senders):
                assert await recv(sender) == f"You wrote: ok {n}"
            assert await recv(watcher) == "A client says: ok 0"
            assert await no_frame(watcher)
        finally:
            for sender in senders:
                await sender.close()
    assert [m["text"] for m in srv.messages(rooms[0])] == ["first", "ok 0"]
    for n, room in enumerate(rooms[1:], start=1):
        assert [m["text"] for m in srv.messages(room)] == [f"ok {n}"]
    failures = [line for line in srv.log().splitlines() if "commit of" in line]
    assert len(failures) == 1 and "1 sender(s)" in failures[0], srv.log()
