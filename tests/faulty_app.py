"""The app with a store that fails while a marker file exists: storage trouble on demand.

Served by uvicorn's `--factory tests.faulty_app:create`; the marker is CHAT_TEST_FAULT_FILE.
"""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Select

from app.auth import RoomSet
from app.main import create_app
from app.messages import StoredMessage
from app.store import HandOn, NewMessage, RoomSummary, Store, Written


class InjectedFault(OSError):
    pass


class FaultyStore(Store):
    @staticmethod
    def _check() -> None:
        if Path(os.environ["CHAT_TEST_FAULT_FILE"]).exists():
            raise InjectedFault("disk I/O error (injected by the test)")

    async def insert(self, batch: Sequence[NewMessage], *, then: HandOn | None = None) -> Written:
        self._check()
        return await super().insert(batch, then=then)

    async def ping(self) -> None:
        self._check()
        await super().ping()

    async def page(
        self, room_id: str, *, limit: int, before: int | None = None, after: int | None = None
    ) -> list[StoredMessage]:
        self._check()
        return await super().page(room_id, limit=limit, before=before, after=after)

    async def fetch(self, query: Select[Any], limit: int) -> list[StoredMessage]:
        self._check()
        return await super().fetch(query, limit)

    async def rooms(self, *, limit: int, readable: RoomSet | None = None) -> list[RoomSummary]:
        self._check()
        return await super().rooms(limit=limit, readable=readable)


def create() -> FastAPI:
    return create_app(store_factory=FaultyStore)
