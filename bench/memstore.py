"""The project with its store in memory: same app, same uvicorn options, no SQL on the message
path (`python -m bench.memstore --port N`). Measures what persistence costs."""

import argparse
import itertools
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.main import create_app
from app.messages import StoredMessage
from app.settings import Settings
from app.store import REPLAY_CAP, NewMessage, Snapshot, Store, Written


class MemoryStore(Store):
    """Keeps every message in per-room lists; ids are global and increasing, as in the table."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self._ids = itertools.count(1)
        self._rooms: dict[str, list[StoredMessage]] = {}

    @asynccontextmanager
    async def locked(self, room_ids: Iterable[str]) -> AsyncIterator["MemoryTransaction"]:
        yield MemoryTransaction(self)

    def add(self, batch: Sequence[NewMessage]) -> list[StoredMessage]:
        stored = [
            StoredMessage(
                next(self._ids),
                m.room_id,
                m.text,
                m.created_at,
                m.author,
                m.author_id,
                m.sender,
                m.key,
            )
            for m in batch
        ]
        for message in stored:
            self._rooms.setdefault(message.room_id, []).append(message)
        return stored

    async def snapshot(self, room_id: str, *, since: int | None, last: int) -> Snapshot:
        messages = self._rooms.get(room_id, [])
        # Store.snapshot's rule: the cutoff is the highest id read, else 0.
        if since is not None:
            above = [m for m in messages if m.id > since]
            cutoff = messages[-1].id if messages else 0
            return Snapshot(above[-REPLAY_CAP:], cutoff, len(above) <= REPLAY_CAP)
        replay = messages[-last:] if last else []
        return Snapshot(replay, replay[-1].id if replay else 0)


class MemoryTransaction:
    """Store.locked's transaction, in memory: nothing to lock, nothing to commit. Every
    message is new here: client keys are not recognised (no retries measured)."""

    refused: frozenset[str] = frozenset()

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def previous_ids(self) -> dict[str, int]:
        return {}

    async def insert(self, batch: Sequence[NewMessage]) -> Written:
        return Written(self._store.add(batch), [])

    async def commit(self) -> None:
        return None


def create() -> FastAPI:
    return create_app(Settings(), store_factory=MemoryStore)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    settings = Settings()
    # The options of `python -m app` (app/__main__.py), so that only the store differs.
    uvicorn.run(
        "bench.memstore:create",
        factory=True,
        host="127.0.0.1",
        port=port,
        ws="app.protocol:ChatWebSocketProtocol",
        ws_max_size=settings.max_message_bytes,
        ws_per_message_deflate=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
