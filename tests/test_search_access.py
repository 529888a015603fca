"""Search with tokens: only the rooms the caller may read, and a room it may not read refused
(401 without a valid token, 403 with one), as the room's own listing is."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect

from tests.support import ServerProcess, unique_room
from tests.test_access import PUBLIC, SECRET, bearer, token, with_token

WORD = f"otter{unique_room('w')[-8:]}"


@pytest.fixture(scope="module")
def rooms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict]]:
    env = {"CHAT_AUTH_SECRET": SECRET, "CHAT_PUBLIC_ROOMS": PUBLIC, "CHAT_RATE_LIMIT": "0"}
    server = ServerProcess(tmp_path_factory.mktemp("search-tokens"), env).start()
    ids = {}
    for room in ("lobby", "team-a", "secret-x"):
        url = with_token(server.ws(room), token("writer"))
        with connect(url) as ws:
            ws.send(f"{WORD} in {room}")
            assert ws.recv(timeout=10) == f"You wrote: {WORD} in {room}"
        [message] = httpx.get(
            f"{server.http}/rooms/{room}/messages", headers=bearer(token("writer"))
        ).json()[-1:]
        ids[room] = message["id"]
    yield server, ids
    server.stop()


def found(server: ServerProcess, headers: dict | None = None, **params: object) -> list[str]:
    response = httpx.get(
        f"{server.http}/search", params={"q": WORD, **params}, headers=headers, timeout=10
    )
    assert response.status_code == 200, response.text
    return [m["room_id"] for m in response.json()]


def test_search_covers_only_the_rooms_the_caller_may_read(rooms) -> None:
    server, _ = rooms
    assert found(server) == ["lobby"]  # no token: the public rooms
    assert found(server, bearer(token("bob", rooms=["team-*"]))) == ["team-a", "lobby"]
    assert found(server, bearer(token("eve", rooms=["secret-x"]))) == ["secret-x", "lobby"]
    assert found(server, bearer(token("root"))) == ["secret-x", "team-a", "lobby"]
    assert found(server, bearer(token("bob", rooms=["team-*"])), room_id="team-a") == ["team-a"]
    assert found(server, room_id="lobby") == ["lobby"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (None, 401),
        (bearer("not-a-token"), 401),
        (bearer(token("bob", secret="another-secret-of-at-least-32-chars!!")), 401),
        (bearer(token("bob", rooms=["team-*"])), 403),
    ],
)
def test_a_room_the_caller_may_not_read_is_refused(rooms, headers, status) -> None:
    server, ids = rooms
    response = httpx.get(
        f"{server.http}/search", params={"q": WORD, "room_id": "secret-x"}, headers=headers
    )
    assert response.status_code == status
    assert set(response.json()) == {"detail"}
    around = httpx.get(
        f"{server.http}/rooms/secret-x/messages",
        params={"around": ids["secret-x"]},
        headers=headers,
    )
    assert around.status_code == status


def test_a_bad_token_is_refused_even_for_a_search_of_every_room(rooms) -> None:
    server, _ = rooms
    response = httpx.get(f"{server.http}/search", params={"q": WORD}, headers=bearer("x.y.z"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
