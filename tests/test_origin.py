"""Cross-Site WebSocket Hijacking: only allowed pages may open a socket."""

import pytest
from websockets.exceptions import InvalidStatus

from tests.clients import join, recv

pytestmark = pytest.mark.anyio


async def refused(url: str, origin: str) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with join(url, origin=origin):
            pass
    return info.value.response.status_code


async def test_by_default_only_the_servers_own_host_may_connect(server, room):
    assert await refused(server.ws(room), "http://evil.example") == 403
    assert await refused(server.ws(room), f"http://127.0.0.1:{server.port + 1}") == 403
    assert await refused(server.ws(room), "null") == 403
    async with join(server.ws(room), origin=f"http://127.0.0.1:{server.port}") as ws:
        await ws.send("same origin")
        assert await recv(ws) == "You wrote: same origin"
    assert [m["text"] for m in server.messages(room)] == ["same origin"]


async def test_a_client_without_origin_is_allowed(server, room):
    async with join(server.ws(room)) as ws:  # the websockets client sends no Origin
        await ws.send("no origin")
        assert await recv(ws) == "You wrote: no origin"


async def test_allowed_origins_replace_the_default(start_server, room):
    srv = start_server({"CHAT_ALLOWED_ORIGINS": "https://chat.example.com, http://localhost:3000"})
    for n, origin in enumerate(["https://chat.example.com", "http://localhost:3000"]):
        async with join(srv.ws(room), origin=origin) as ws:
            assert [await recv(ws) for _ in range(n)] == [
                "A client says: https://chat.example.com"
            ][:n]
            await ws.send(origin)
            assert await recv(ws) == f"You wrote: {origin}"
    assert await refused(srv.ws(room), f"http://127.0.0.1:{srv.port}") == 403
    assert await refused(srv.ws(room), "https://evil.example.com") == 403
    assert await refused(srv.ws(room), "https://chat.example.com.evil.example") == 403
    assert len(srv.messages(room)) == 2
