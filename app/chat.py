"""The running chat: what the lifespan builds and the routes use, kept on `app.state.chat`."""

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.broker import Broker
from app.connection import Connection
from app.hub import Hub
from app.settings import Settings
from app.store import Store
from app.writer import Writer

log = logging.getLogger(__name__)

GOING_AWAY = 1001


@dataclass(slots=True)
class Chat:
    settings: Settings
    store: Store
    writer: Writer
    hub: Hub
    broker: Broker
    drained: bool = False

    async def join(self, conn: Connection) -> None:
        """Register first, then subscribe: the history snapshot is read only after this."""
        self.hub.join(conn)
        await self.broker.subscribe(conn.room_id)

    async def leave(self, conn: Connection) -> None:
        await conn.stop()
        self.hub.leave(conn)
        await self.broker.unsubscribe(conn.room_id)

    async def drain(self) -> None:
        """Shutdown: refuse new sockets, commit what is queued, close every client with 1001."""
        if self.drained:
            return
        self.drained = True
        self.hub.closing = True
        queued = self.writer.queued
        await self.writer.flush()
        connections = self.hub.connections
        await self.hub.shutdown(GOING_AWAY, "server shutting down", grace=2.0)
        log.info(
            "drained: %d queued message(s) committed, %d client(s) closed with 1001",
            queued,
            connections,
            extra={"messages": queued, "clients": connections, "code": GOING_AWAY},
        )


def get_chat(connection: HTTPConnection) -> Chat:
    return connection.app.state.chat  # type: ignore[no-any-return]


ChatDep = Annotated[Chat, Depends(get_chat)]
