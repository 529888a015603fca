"""WebSocket client helpers on the `websockets` library."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

TIMEOUT = 10.0


def join(url: str, **kwargs: Any) -> Any:
    """`async with join(url) as ws:`, a plain client with a generous size limit. Its incoming
    queue is unbounded: a test client that does not read must not stall its own close."""
    kwargs.setdefault("max_size", 2**24)
    kwargs.setdefault("max_queue", None)
    kwargs.setdefault("open_timeout", TIMEOUT)
    return connect(url, **kwargs)


def join_json(url: str, **kwargs: Any) -> Any:
    return join(url, subprotocols=["chat.v1.json"], **kwargs)  # type: ignore[list-item]


async def recv(ws: ClientConnection, timeout: float = TIMEOUT) -> str:
    frame = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(frame, str)
    return frame


async def recv_n(ws: ClientConnection, n: int, timeout: float = TIMEOUT) -> list[str]:
    return [await recv(ws, timeout) for _ in range(n)]


async def recv_json(ws: ClientConnection, timeout: float = TIMEOUT) -> dict[str, Any]:
    return json.loads(await recv(ws, timeout))  # type: ignore[no-any-return]


async def history(ws: ClientConnection) -> list[dict[str, Any]]:
    """A JSON client's replay, up to its history_end frame."""
    frames = []
    while (frame := await recv_json(ws))["type"] != "history_end":
        frames.append(frame)
    return frames


async def no_frame(ws: ClientConnection, wait: float = 0.3) -> bool:
    try:
        await asyncio.wait_for(ws.recv(), wait)
    except TimeoutError:
        return True
    return False


async def closed_with(ws: ClientConnection, timeout: float = TIMEOUT) -> int | None:
    """Read until the server closes; the close code it sent."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except TimeoutError:
        raise AssertionError("the server did not close the connection") from None
    except Exception:
        pass
    return ws.close_code


def join_v2(url: str, **kwargs: Any) -> Any:
    return join(url, subprotocols=["chat.v2.json"], **kwargs)  # type: ignore[list-item]


async def send_v2(ws: ClientConnection, text: str, key: str | None = None) -> None:
    """A `chat.v2.json` send frame (without `key` when it is None)."""
    body: dict[str, Any] = {"type": "send", "text": text}
    if key is not None:
        body["key"] = key
    await ws.send(json.dumps(body))


async def history_v2(ws: ClientConnection) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A `chat.v2.json` client's replay and its history_end frame."""
    frames = []
    while (frame := await recv_json(ws))["type"] != "history_end":
        frames.append(frame)
    return frames, frame
