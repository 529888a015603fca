"""The writer's CPU a message against SQLite's own floor (`python -m bench.floor`).

Three writers store the same batches (messages over 50 rooms, `synchronous=FULL`, WAL, each
batch one transaction), alternated batch size by batch size and round by round on fresh files
seeded with the same rows; each commit is timed by its thread's own CPU (`time.thread_time`),
Python included, and the figure is the median of µs a message:

- `floor`: a bare table with the `(room_id, id)` index and one multi-row INSERT a batch, what
  any durable chat server must do;
- `floor+search`: the same with an FTS5 index (external content, the project's tokenizer) fed
  by one `INSERT ... SELECT` of the batch's rows, in the same transaction: SQLite's own cost of
  a message stored and searchable;
- `project`: the project's schema (its Alembic migrations) and connection pragmas, its writer's
  own function (`_write_sqlite`) and its search index's catch-ups every BATCH messages
  (app/search_index.py), as `python -m app` runs them.

On one core shared with the event loop, the in-memory store's frames/s can be matched only as
far as the writer's CPU allows: SQLite / in-memory = L / (L + W), with L the server's CPU a
message with the in-memory store and W the writer's. The floor bounds W from below.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from app.db import create_engine, sqlite_on_connect
from app.schema import prepare_schema
from app.search_index import BATCH, catch_up
from app.store import NewMessage, _write_sqlite

log = logging.getLogger("bench.floor")

ROOMS = 50
SEED = 20_000
KINDS = ("floor", "floor+search", "project")
Commit = Callable[[list[NewMessage]], None]


def _messages(start: int, count: int) -> list[NewMessage]:
    now = datetime.now(UTC)
    return [
        NewMessage(
            f"room-{i % ROOMS}", f"sender-{i % 200}:{i}:{time.perf_counter_ns()}:" + "x" * 40, now
        )
        for i in range(start, start + count)
    ]


def _bare(path: Path, search: bool) -> tuple[sqlite3.Connection, Commit]:
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "temp_store=MEMORY"):
        db.execute(f"PRAGMA {pragma}")
    db.execute(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, room_id TEXT NOT NULL,"
        " text TEXT NOT NULL, created_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX ix_room_id_id ON messages (room_id, id)")
    if search:
        db.execute(
            "CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages',"
            " content_rowid='id', columnsize=0, tokenize='unicode61 remove_diacritics 2')"
        )

    def commit(batch: list[NewMessage]) -> None:
        params: list[str] = []
        for m in batch:
            params += (m.room_id, m.text, m.created_at.isoformat(" ", "microseconds")[:26])
        values = ",".join(["(?,?,?)"] * len(batch))
        db.execute("BEGIN IMMEDIATE")
        last = db.execute(
            f"INSERT INTO messages (room_id, text, created_at) VALUES {values}", params
        ).lastrowid
        if search:
            db.execute(
                "INSERT INTO messages_fts(rowid, text) SELECT id, text FROM messages WHERE id > ?",
                (last - len(batch),),
            )
        db.execute("COMMIT")

    return db, commit


def _project(path: Path) -> tuple[sqlite3.Connection, Commit]:
    async def migrate() -> Callable[[sqlite3.Connection, object], None]:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await prepare_schema(engine, auto_migrate=True)
            return sqlite_on_connect(engine)
        finally:
            await engine.dispose()

    on_connect = asyncio.run(migrate())
    db = sqlite3.connect(path, isolation_level=None)
    on_connect(db, None)
    behind = 0

    def commit(batch: list[NewMessage]) -> None:
        nonlocal behind
        _write_sqlite(batch, db)  # one statement: its own transaction (app/store.py)
        behind += len(batch)
        if behind >= BATCH:  # as SearchIndexFollower does, on the same thread
            db.execute("BEGIN IMMEDIATE")
            catch_up(1 << 62, db)
            db.execute("COMMIT")
            behind = 0

    return db, commit


def _open(kind: str, path: Path) -> tuple[sqlite3.Connection, Commit]:
    return _project(path) if kind == "project" else _bare(path, search=kind == "floor+search")


def measure(kind: str, path: Path, size: int, commits: int, seed: int = SEED) -> float:
    """Median thread CPU µs a message of `commits` batches of `size`, after `seed` rows."""
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    db, commit = _open(kind, path)
    try:
        for start in range(0, seed, 1000):
            commit(_messages(start, min(1000, seed - start)))
        per_message = []
        for n in range(commits):
            batch = _messages(seed + n * size, size)
            began = time.thread_time()
            commit(batch)
            per_message.append((time.thread_time() - began) / size * 1e6)
        return statistics.median(per_message)
    finally:
        db.close()


def run(sizes: list[int], rounds: int, workdir: Path) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {str(s): {k: [] for k in KINDS} for s in sizes}
    for round_no in range(rounds):
        for size in sizes:
            order = KINDS[round_no % len(KINDS) :] + KINDS[: round_no % len(KINDS)]
            for kind in order:
                commits = max(60, min(400, 20_000 // size))
                figure = measure(kind, workdir / f"floor-{kind}.db", size, commits)
                results[str(size)][kind].append(figure)
                log.info(
                    "round %d, batches of %d, %s: %.2f µs a message",
                    round_no + 1,
                    size,
                    kind,
                    figure,
                )
    return results


def table(results: dict[str, dict[str, list[float]]]) -> str:
    lines = [
        "| µs of writer-thread CPU a message (median, min-max) | " + " | ".join(KINDS) + " |",
        "|---" * (len(KINDS) + 1) + "|",
    ]
    for size, kinds in results.items():
        cells = [f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" for v in kinds.values()]
        lines.append(f"| batches of {size} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,64,960", help="messages a batch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with tempfile.TemporaryDirectory() as workdir:
        results = run([int(s) for s in args.sizes.split(",")], args.rounds, Path(workdir))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    sys.stdout.write(table(results) + "\n")


if __name__ == "__main__":
    main()
