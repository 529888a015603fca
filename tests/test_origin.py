"""Cross-Site WebSocket Hijacking: only allowed pages may open a socket."""

import httpx
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


def via_loopback(srv, room: str, host: str, **kwargs):
    """A socket to the server on 127.0.0.1 whose URL (so its Host header) names `host`."""
    return join(f"ws://{host}/{room}", host="127.0.0.1", port=srv.port, **kwargs)


async def refused_via(srv, room: str, host: str, origin: str) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with via_loopback(srv, room, host, origin=origin):
            pass
    return info.value.response.status_code


async def test_a_dns_rebinding_page_is_refused_on_loopback(server, room):
    # evil.example resolves to 127.0.0.1: the page's Origin and the Host header agree.
    host = f"evil.example:{server.port}"
    assert await refused_via(server, room, host, f"http://{host}") == 403
    log = server.log()
    refusal = [line for line in log.splitlines() if "refused a WebSocket" in line][-1]
    assert "CHAT_ALLOWED_ORIGINS" in refusal, log


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "[::1]"])
async def test_loopback_names_with_the_servers_port_are_its_own_host_whatever_the_host_header(
    server, room, name
):
    origin = f"http://{name}:{server.port}"
    async with via_loopback(server, room, f"127.0.0.1:{server.port}", origin=origin) as ws:
        await ws.send(name)
        assert await recv(ws) == f"You wrote: {name}"
    assert (
        await refused_via(server, room, f"{name}:{server.port}", f"https://{name}:{server.port}")
        == 403
    )
    assert await refused_via(server, room, f"{name}:{server.port}", f"http://{name}") == 403


async def test_rest_and_pages_answer_under_any_host(server, room):
    # A reverse proxy on loopback passes the public Host: only the socket's Origin is checked.
    for path in ("/rooms", f"/rooms/{room}/messages", f"/rooms/{room}", "/"):
        response = httpx.get(f"{server.http}{path}", headers={"Host": "chat.example.com"})
        assert response.status_code == 200, path


async def test_allowed_origins_are_compared_as_origins_with_default_ports_normalised(
    start_server, room
):
    srv = start_server(
        {"CHAT_ALLOWED_ORIGINS": "https://chat.example.com:443, HTTP://Localhost:3000/"}
    )
    for origin in (
        "https://chat.example.com",
        "https://chat.example.com:443",
        "http://localhost:3000",
    ):
        async with join(srv.ws(room, "?since=999999"), origin=origin) as ws:  # no replay
            await ws.send(origin)
            assert await recv(ws) == f"You wrote: {origin}"
    for origin in ("http://chat.example.com", "https://chat.example.com:8443", "http://localhost"):
        assert await refused(srv.ws(room), origin) == 403
