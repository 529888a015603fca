"""The REST API over the history, through a real server."""

import httpx
import pytest

from tests.clients import join, recv_n
from tests.support import faulty_server_command, unique_room

pytestmark = pytest.mark.anyio


async def fill(server, room: str, n: int) -> list[dict]:
    async with join(server.ws(room)) as ws:
        for i in range(n):
            await ws.send(f"m{i}")
        await recv_n(ws, n)
    return server.all_messages(room)


async def test_messages_are_listed_oldest_first_with_iso_utc_times(server, room):
    stored = await fill(server, room, 3)
    assert [m["text"] for m in stored] == ["m0", "m1", "m2"]
    assert [m["id"] for m in stored] == sorted(m["id"] for m in stored)
    for m in stored:
        assert set(m) == {"id", "room_id", "text", "created_at", "author"}
        assert m["room_id"] == room
        assert m["created_at"].endswith("Z") and "T" in m["created_at"]


async def test_paging_with_limit_before_and_after(server, room):
    stored = await fill(server, room, 12)
    ids = [m["id"] for m in stored]
    assert [m["id"] for m in server.messages(room, limit=5)] == ids[-5:]
    assert [m["id"] for m in server.messages(room)] == ids  # default 50
    assert [m["id"] for m in server.messages(room, limit=4, before=ids[6])] == ids[2:6]
    assert [m["id"] for m in server.messages(room, limit=4, after=ids[2])] == ids[3:7]
    assert [m["id"] for m in server.messages(room, after=ids[2], before=ids[5])] == ids[3:5]
    assert [m["id"] for m in server.messages(room, limit=1, after=0)] == ids[:1]
    assert server.messages(room, before=ids[0]) == []
    assert server.messages(room, after=ids[-1]) == []
    assert server.messages(room, before=0) == []
    assert len(server.messages(room, limit=1000, after=2**63 - 1)) == 0


def test_an_unknown_room_is_an_empty_list(server):
    assert server.messages(unique_room("nobody")) == []


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "x"},
        {"before": -1},
        {"after": -1},
        {"before": 2**63},
        {"after": "1e3"},
        {"before": "0.0"},  # pydantic alone would read these as whole numbers
        {"limit": "5.0"},
        {"around": "3.0"},
        {"around": -1},
    ],
)
def test_bad_parameters_give_422_with_fastapis_error_body(server, params):
    response = httpx.get(f"{server.http}/rooms/general/messages", params=params)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


@pytest.mark.parametrize("bad", ["a" * 65, "sp%20ace", "%C3%A9", "a%3Bb", "..."[:1] + "%00"])
def test_a_bad_room_id_gives_422(server, bad):
    response = httpx.get(f"{server.http}/rooms/{bad}/messages")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "room_id"]


async def test_rooms_are_listed_most_recently_active_first(server):
    first, second = unique_room("first"), unique_room("second")
    await fill(server, first, 2)
    await fill(server, second, 1)
    rooms = httpx.get(f"{server.http}/rooms", params={"limit": 1000}).json()
    by_id = {r["room_id"]: r for r in rooms}
    assert by_id[first]["messages"] == 2 and by_id[second]["messages"] == 1
    order = [r["room_id"] for r in rooms]
    assert order.index(second) < order.index(first)
    assert by_id[second]["last_message_at"].endswith("Z")
    assert [r["room_id"] for r in httpx.get(f"{server.http}/rooms?limit=1").json()] == [order[0]]
    assert httpx.get(f"{server.http}/rooms?limit=0").status_code == 422


def test_healthz_answers_ok_with_live_counts(server):
    response = httpx.get(f"{server.http}/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {"connections", "rooms", "queued_writes"} <= set(body)


def test_healthz_is_503_when_the_database_does_not_answer(start_server, tmp_path):
    fault = tmp_path / "fault"
    srv = start_server({"CHAT_TEST_FAULT_FILE": str(fault)}, command=faulty_server_command())
    assert httpx.get(f"{srv.http}/healthz").status_code == 200
    fault.touch()
    response = httpx.get(f"{srv.http}/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    fault.unlink()
    assert httpx.get(f"{srv.http}/healthz").status_code == 200


def test_openapi_documents_the_real_constraints(server):
    spec = httpx.get(f"{server.http}/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/rooms/{room_id}/messages"]["get"]["parameters"]}
    assert params["room_id"]["schema"]["maxLength"] == 64
    assert "pattern" in params["room_id"]["schema"]
    assert params["limit"]["schema"]["maximum"] == 1000
    assert "/rooms/{room_id}" not in spec["paths"]  # the page is not part of the API
    assert httpx.get(f"{server.http}/docs").status_code == 200
