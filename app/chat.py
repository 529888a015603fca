"""The running chat: what the lifespan builds and the routes use, kept on `app.state.chat`."""

import asyncio
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
# The drain's budget, within the contract's 10 s from the signal to the exit (uvicorn's own
# shutdown and the lifespan's end take the rest, see app/__main__.py).
DRAIN_FLUSH = 3.5
DRAIN_CLOSE = 3.0


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
        """Shutdown, in at most DRAIN_FLUSH + DRAIN_CLOSE seconds whatever the clients do.

        From its start nothing more is acknowledged: new sockets are refused and what clients
        still send is neither stored nor echoed (see routes/ws.py). What was queued before is
        committed (for up to DRAIN_FLUSH s), then every client is closed with 1001 after its
        queued frames (for up to DRAIN_CLOSE s in all).
        """
        if self.drained:
            return
        self.drained = True
        self.hub.closing = True
        queued = self.writer.queued
        try:
            await asyncio.wait_for(self.writer.flush(), DRAIN_FLUSH)
        except TimeoutError:
            log.warning(
                "drain: %d message(s) not committed within %.0f s: closing the clients anyway",
                self.writer.queued,
                DRAIN_FLUSH,
            )
        connections = self.hub.connections
        await self.hub.shutdown(GOING_AWAY, "server shutting down", grace=DRAIN_CLOSE - 1.0)
        log.info(
            "drained: %d queued message(s) committed, %d client(s) closed with 1001",
            queued,
            connections,
            extra={"messages": queued, "clients": connections, "code": GOING_AWAY},
        )


def get_chat(connection: HTTPConnection) -> Chat:
    return connection.app.state.chat  # type: ignore[no-any-return]


ChatDep = Annotated[Chat, Depends(get_chat)]
