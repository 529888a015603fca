"""The project served with one thing changed, to measure a lever before anyone adopts it
(`python -m bench.variant NAME --port N`; `python -m bench --kinds project,NAME`).

Each variant is the app of `python -m app` (create_app, the same uvicorn options as
app/__main__.py) with some uvicorn options or the store swapped."""

import argparse
import os
from collections.abc import Iterable
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from uvicorn.protocols.utils import ClientDisconnected
from websockets.exceptions import InvalidState

import app.routes.ws
from app.connection import Connection
from app.frames import Frame
from app.main import create_app
from app.models import Message
from app.protocol import ChatWebSocketProtocol
from app.rooms import is_valid_room_id
from app.routes.ws import room_socket
from app.settings import Settings
from app.store import _COLUMNS, REPLAY_CAP, Snapshot, Store
from bench.memstore import MemoryStore


class OneQueryStore(Store):
    """The join's snapshot in one query where it can: the newest rows carry the cutoff (the
    room's newest id at that moment) themselves, so the separate max(id) query is only needed
    when a `since` leaves nothing to replay."""

    async def snapshot(self, room_id: str, *, since: int | None, last: int) -> Snapshot:
        if since is None and last == 0:
            return await super().snapshot(room_id, since=since, last=last)
        query = select(*_COLUMNS).where(Message.room_id == room_id)
        if since is not None:
            query = query.where(Message.id > since)
        rows = await self._fetch(
            query.order_by(Message.id.desc()), REPLAY_CAP if since is not None else last
        )
        if rows:
            return Snapshot(rows[::-1], rows[0].id)
        if since is None:
            return Snapshot([], 0)  # no row at all: the room is empty
        return await super().snapshot(room_id, since=since, last=last)


class BatchProtocol(ChatWebSocketProtocol):
    """Takes `{"type": "websocket.send", "texts": [...]}`: several text frames, one write."""

    async def send(self, message: Any) -> None:
        texts = message.get("texts")
        if texts is None or not self.handshake_complete or self.close_sent:
            await super().send(message)
            return
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        try:
            for text in texts:
                self.conn.send_text(text.encode())
        except InvalidState:
            raise ClientDisconnected() from None
        self.transport.write(b"".join(self.conn.data_to_send()))


class BatchConnection(Connection):
    """Drains every frame queued at a wake-up and hands them to the socket in one send; the
    join's replay goes out as one send too."""

    def start(self, history: Iterable[Frame], cutoff: int) -> None:
        texts = [frame["text"] for frame in history]
        super().start([{"type": "websocket.send", "texts": texts}] if texts else [], cutoff)

    async def _drain(self) -> None:
        frames = self._frames
        while True:
            if frames:
                texts = []
                while frames:
                    message_id, frame = frames.popleft()
                    if message_id > self._cutoff:
                        texts.append(frame["text"])
                if texts:
                    self._sending = True
                    await self._send({"type": "websocket.send", "texts": texts})
                    self._sending = False
            if self.close_code is not None:
                return
            self._wakeup.clear()
            await self._wakeup.wait()


def plain_route(application: FastAPI) -> None:
    """Serve the room socket from a Starlette `WebSocketRoute` ahead of FastAPI's route: the
    same handler, without dependency solving and its per-socket `AsyncExitStack`."""
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    async def endpoint(websocket: WebSocket) -> None:
        room_id = websocket.path_params["room_id"]
        since = websocket.query_params.get("since")
        if not is_valid_room_id(room_id) or (since is not None and not since.isdigit()):
            await websocket.close(1008)
            return
        chat = websocket.app.state.chat
        await room_socket(websocket, room_id, chat, int(since) if since is not None else None)

    application.router.routes.insert(0, WebSocketRoute("/{room_id}", endpoint))


STORES: dict[str, type[Store]] = {"sqlite": Store, "onequery": OneQueryStore, "memory": MemoryStore}

VARIANTS: dict[str, dict[str, Any]] = {
    "ws-legacy": {"ws": "websockets"},
    "ws-sansio": {"ws": "websockets-sansio"},
    "ws-wsproto": {"ws": "wsproto"},
    "loop-asyncio": {"loop": "asyncio"},
    "deflate": {"ws_per_message_deflate": True},
    "onequery": {"store": "onequery"},
    "batch": {"ws": "bench.variant:BatchProtocol", "connection": "batch"},
    "plain-route": {"route": "plain"},
    "sync-normal": {"env": {"CHAT_SQLITE_SYNCHRONOUS": "NORMAL"}},
    "batch-onequery": {
        "ws": "bench.variant:BatchProtocol",
        "connection": "batch",
        "store": "onequery",
    },
}

_variant: dict[str, Any] = {}


def create() -> FastAPI:
    application = create_app(Settings(), store_factory=STORES[_variant.get("store", "sqlite")])
    if _variant.get("route") == "plain":
        plain_route(application)
    return application


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name", choices=sorted(VARIANTS))
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    _variant.update(VARIANTS[args.name])
    os.environ.update(_variant.pop("env", {}))
    if _variant.pop("connection", None) == "batch":
        app.routes.ws.Connection = BatchConnection  # type: ignore[misc]
    settings = Settings()
    options: dict[str, Any] = {
        "ws": "app.protocol:ChatWebSocketProtocol",
        "ws_max_size": settings.max_message_bytes,
        "ws_per_message_deflate": False,
        "log_level": "warning",
    }
    options.update({k: v for k, v in _variant.items() if k not in ("store", "route")})
    uvicorn.run(create, factory=True, host="127.0.0.1", port=args.port, **options)


if __name__ == "__main__":
    main()
