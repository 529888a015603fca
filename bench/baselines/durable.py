"""A straightforward durable server: the ceiling's `websockets` server, with every message
committed to SQLite before anyone sees it (`python -m bench.baselines.durable --port N`).

One worker thread owns a stdlib `sqlite3` connection (WAL, `synchronous=FULL`: a commit is
fsynced). Messages received while a commit runs wait in a list; the writer takes the whole
list, stores it with one `executemany` and one commit in a single call to that thread, then
sends each message's echo and broadcast. What the project is held to at an ordinary load
("never worse than the simple durable server")."""

import argparse
import asyncio
import sqlite3
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.baselines import REPLAY

rooms: dict[str, set[ServerConnection]] = {}
recent: dict[str, deque[str]] = {}
Pending = tuple[str, str, ServerConnection]


class GroupCommit:
    def __init__(self, path: Path) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite")
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._pending: list[Pending] = []
        self._wake = asyncio.Event()

    def open(self) -> None:
        self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, room TEXT NOT NULL,"
            " text TEXT NOT NULL, at REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS room_id ON messages (room, id)")

    def submit(self, room: str, text: str, sender: ServerConnection) -> None:
        self._pending.append((room, text, sender))
        self._wake.set()

    def _commit(self, rows: list[tuple[str, str, float]]) -> None:
        assert self._db is not None
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO messages (room, text, at) VALUES (?, ?, ?)", rows)
        self._db.execute("COMMIT")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self.open)
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            now = time.time()
            rows = [(room, text, now) for room, text, _ in batch]
            await loop.run_in_executor(self._pool, self._commit, rows)
            for room, text, sender in batch:
                recent.setdefault(room, deque(maxlen=REPLAY)).append(text)
                broadcast([sender], f"You wrote: {text}")
                members = rooms.get(room, ())
                broadcast((m for m in members if m is not sender), f"A client says: {text}")


writer: GroupCommit


async def handler(websocket: ServerConnection) -> None:
    room = websocket.request.path if websocket.request else "/"
    for old in list(recent.get(room, ())):
        await websocket.send(f"A client says: {old}")
    members = rooms.setdefault(room, set())
    members.add(websocket)
    try:
        async for text in websocket:
            writer.submit(room, str(text), websocket)
    finally:
        members.discard(websocket)


async def serve_forever(port: int, path: Path) -> None:
    global writer
    writer = GroupCommit(path)
    task = asyncio.create_task(writer.run())
    async with serve(handler, "127.0.0.1", port, compression=None) as server:
        await asyncio.wait([task, asyncio.ensure_future(server.serve_forever())])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", type=Path, help="default: a file in a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="durable-") as tmp:
        uvloop.run(serve_forever(args.port, args.database or Path(tmp) / "durable.db"))


if __name__ == "__main__":
    main()
