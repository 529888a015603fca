"""Deleting a message, through a real server (contract: REST `DELETE`, "Deletion", the
`deleted` frame of `chat.v2.json`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients import (
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
from tests.support import ROOT, ServerProcess, unique_room
from tests.test_access import SECRET, bearer, token, with_token

pytestmark = pytest.mark.anyio

ALICE, BOB, ADMIN = token("alice"), token("bob"), token("mod", admin=True)


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"CHAT_AUTH_SECRET": SECRET, "CHAT_PUBLIC_ROOMS": "lobby-*", "CHAT_RATE_LIMIT": "0"}
    proc = ServerProcess(tmp_path_factory.mktemp("deletion"), env).start()
    yield proc
    proc.stop()


async def post(server: ServerProcess, room: str, text: str, who: str = ALICE) -> dict[str, Any]:
    """`text` sent by `who` on a v2 socket; its stored copy."""
    async with join_v2(with_token(server.ws(room), who)) as ws:
        await history_v2(ws)
        await send_v2(ws, text, key=uuid.uuid4().hex)
        frame = await recv_json(ws)
        assert frame["type"] == "message" and frame["text"] == text
        return frame


def delete(server: ServerProcess, room: str, message_id: int, who: str | None) -> httpx.Response:
    headers = bearer(who) if who is not None else {}
    return httpx.delete(f"{server.http}/rooms/{room}/messages/{message_id}", headers=headers)


def texts(server: ServerProcess, room: str, who: str = ALICE, **params: Any) -> list[str]:
    response = httpx.get(f"{server.http}/rooms/{room}/messages", params=params, headers=bearer(who))
    response.raise_for_status()
    return [m["text"] for m in response.json()]


async def test_the_author_deletes_their_own_message(tokens: ServerProcess, room: str) -> None:
    frame = await post(tokens, room, "mine")
    assert delete(tokens, room, frame["id"], ALICE).status_code == 204
    assert texts(tokens, room) == []
    assert delete(tokens, room, frame["id"], ALICE).status_code == 404  # gone for good


async def test_an_admin_deletes_anyones_message(tokens: ServerProcess, room: str) -> None:
    frame = await post(tokens, room, "by alice")
    assert delete(tokens, room, frame["id"], ADMIN).status_code == 204
    assert texts(tokens, room) == []


async def test_someone_else_is_refused_with_403(tokens: ServerProcess, room: str) -> None:
    frame = await post(tokens, room, "not bob's")
    response = delete(tokens, room, frame["id"], BOB)
    assert response.status_code == 403 and "author" in response.json()["detail"]
    assert texts(tokens, room) == ["not bob's"]


async def test_no_token_is_refused_with_401(tokens: ServerProcess) -> None:
    room = unique_room("lobby")  # public: anyone reads and writes, but deleting needs a token
    frame = await post(tokens, room, "public")
    for headers in ({}, bearer("not-a-token")):
        response = httpx.delete(
            f"{tokens.http}/rooms/{room}/messages/{frame['id']}", headers=headers
        )
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert texts(tokens, room) == ["public"]


async def test_an_unknown_id_or_another_rooms_id_is_404(tokens: ServerProcess, room: str) -> None:
    frame = await post(tokens, room, "here")
    assert delete(tokens, room, frame["id"] + 10_000, ALICE).status_code == 404
    assert delete(tokens, unique_room(), frame["id"], ALICE).status_code == 404
    assert delete(tokens, unique_room(), frame["id"], ADMIN).status_code == 404
    assert texts(tokens, room) == ["here"]


async def test_a_token_for_other_rooms_is_refused_with_403(
    tokens: ServerProcess, room: str
) -> None:
    frame = await post(tokens, room, "private")
    elsewhere = token("alice", rooms=["other-*"])
    assert delete(tokens, room, frame["id"], elsewhere).status_code == 403
    assert texts(tokens, room) == ["private"]


def test_bad_ids_are_422(tokens: ServerProcess, room: str) -> None:
    for bad in ("x", "-1", "1.0", str(2**63)):
        assert delete(tokens, room, bad, ALICE).status_code == 422  # type: ignore[arg-type]


async def test_the_open_chat_refuses_deletion_with_403(server: ServerProcess, room: str) -> None:
    async with join_json(server.ws(room)) as ws:
        await history(ws)
        await ws.send("open")
        frame = await recv_json(ws)
    response = delete(server, room, frame["id"], None)
    assert response.status_code == 403
    assert "CHAT_AUTH_SECRET" in response.json()["detail"]
    assert [m["text"] for m in httpx.get(f"{server.http}/rooms/{room}/messages").json()] == ["open"]


async def test_a_deleted_message_is_never_shown_again(tokens: ServerProcess, room: str) -> None:
    keep1 = await post(tokens, room, "before")
    gone = await post(tokens, room, "zebracorn secret")
    keep2 = await post(tokens, room, "after")
    rooms = httpx.get(f"{tokens.http}/rooms", headers=bearer(ADMIN)).json()
    assert {r["room_id"]: r["messages"] for r in rooms}[room] == 3
    assert delete(tokens, room, gone["id"], ALICE).status_code == 204

    assert texts(tokens, room) == ["before", "after"]
    assert texts(tokens, room, after=keep1["id"]) == ["after"]
    assert texts(tokens, room, around=gone["id"], limit=10) == ["before", "after"]
    found = httpx.get(
        f"{tokens.http}/search", params={"q": "zebracorn"}, headers=bearer(ADMIN)
    ).json()
    assert found == []
    rooms = httpx.get(f"{tokens.http}/rooms", headers=bearer(ADMIN)).json()
    assert {r["room_id"]: r["messages"] for r in rooms}[room] == 2
    async with join_v2(with_token(tokens.ws(room), ALICE)) as ws:  # a joiner's replay
        replay, _ = await history_v2(ws)
        assert [f["text"] for f in replay] == ["before", "after"]
    resume = with_token(tokens.ws(room, f"?since={keep1['id']}"), ALICE)
    async with join_v2(resume) as ws:  # a resume from before it
        replay, _ = await history_v2(ws)
        assert [f["id"] for f in replay] == [keep2["id"]]
    exported = subprocess.run(
        [sys.executable, "-m", "app", "export", "--room", room],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "CHAT_DATABASE_URL": tokens.database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert exported.returncode == 0, exported.stderr
    assert [json.loads(line)["text"] for line in exported.stdout.splitlines()] == [
        "before",
        "after",
    ]


async def test_a_room_whose_last_message_is_deleted_leaves_the_listing(
    tokens: ServerProcess, room: str
) -> None:
    frame = await post(tokens, room, "only one")
    assert delete(tokens, room, frame["id"], ALICE).status_code == 204
    rooms = httpx.get(f"{tokens.http}/rooms", params={"limit": 1000}, headers=bearer(ADMIN))
    assert room not in {r["room_id"] for r in rooms.json()}
    later = await post(tokens, room, "the room goes on")
    assert later["id"] > frame["id"]  # ids are never reused
    assert texts(tokens, room) == ["the room goes on"]


async def test_v2_clients_are_told_and_others_are_not(tokens: ServerProcess, room: str) -> None:
    async with (
        join_v2(with_token(tokens.ws(room), BOB)) as v2,
        join_json(with_token(tokens.ws(room), BOB)) as v1,
        join(with_token(tokens.ws(room), BOB)) as plain,
    ):
        await history_v2(v2)
        await history(v1)
        frame = await post(tokens, room, "soon gone")
        assert (await recv_json(v2))["id"] == frame["id"]
        assert (await recv_json(v1))["id"] == frame["id"]
        assert await recv(plain) == "A client says: soon gone"
        assert delete(tokens, room, frame["id"], ALICE).status_code == 204
        assert await recv_json(v2) == {"type": "deleted", "id": frame["id"], "room_id": room}
        assert await no_frame(v1) and await no_frame(plain)


async def test_a_joiner_whose_replay_holds_the_message_is_told_after_it(
    tokens: ServerProcess, room: str
) -> None:
    """Deletions race joins: whatever the join's replay held, the deletion follows it."""
    frames = [await post(tokens, room, f"m{n}") for n in range(3)]
    url = with_token(tokens.ws(room), BOB)
    for frame in frames:
        async with join_v2(url) as ws:
            deleting = asyncio.create_task(
                asyncio.to_thread(delete, tokens, room, frame["id"], ALICE)
            )
            replay, _ = await history_v2(ws)
            assert (await deleting).status_code == 204
            if frame["id"] in [f["id"] for f in replay]:
                assert await recv_json(ws) == {
                    "type": "deleted",
                    "id": frame["id"],
                    "room_id": room,
                }
    assert texts(tokens, room) == []


async def test_deleted_text_leaves_the_sqlite_file_at_a_clean_stop(tmp_path: Path) -> None:
    env = {"CHAT_AUTH_SECRET": SECRET, "CHAT_RATE_LIMIT": "0"}
    server = ServerProcess(tmp_path, env).start()
    room, word = unique_room(), f"qx{uuid.uuid4().hex}"
    try:
        for n in range(50):  # enough rows for several pages, around the secret one
            await post(server, room, f"filler {n} " + "x" * 200)
        gone = await post(server, room, f"the secret is {word}")
        await post(server, room, "after")
        assert delete(server, room, gone["id"], ALICE).status_code == 204
    finally:
        server.stop()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("chat.db")]
    assert files
    for path in files:
        data = path.read_bytes()
        assert word.encode() not in data, path.name
        assert b"the secret is" not in data, path.name


@pytest.mark.services
async def test_deleted_frames_reach_v2_clients_on_both_processes(
    tmp_path: Path, services_env: dict[str, str], room: str
) -> None:
    from tests.test_multiprocess import start_pair

    env = {**services_env, "CHAT_AUTH_SECRET": SECRET}
    first, second = start_pair(tmp_path, env)
    try:
        async with (
            join_v2(with_token(first.ws(room), BOB)) as a,
            join_v2(with_token(second.ws(room), BOB)) as b,
        ):
            await history_v2(a)
            await history_v2(b)
            frame = await post(first, room, "on both")
            assert (await recv_json(a))["id"] == (await recv_json(b))["id"] == frame["id"]
            assert delete(second, room, frame["id"], ALICE).status_code == 204
            told = {"type": "deleted", "id": frame["id"], "room_id": room}
            assert await recv_json(a) == told and await recv_json(b) == told
            assert texts(first, room) == texts(second, room) == []
            async with join_v2(with_token(first.ws(room), BOB)) as c:
                replay, _ = await history_v2(c)
                assert replay == []
    finally:
        first.stop()
        second.stop()
