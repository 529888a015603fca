"""`python -m bench.retention`: live echo latency while retention deletes 100,000 messages.

Each round seeds a fresh SQLite database with ROWS messages of a year ago (20 rooms, indexed for
search, as an import leaves them), starts `python -m app`, and echoes one message every 10 ms
on a live socket while (a) the server's own retention task prunes them (`CHAT_RETENTION_DAYS`)
and (b) `python -m app prune` does from another process. Reported per mode: the worst and the
99th percentile echo over the prune, median over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from websockets.asyncio.client import connect

from bench.bulk import bulk_load
from tests.support import ServerProcess

log = logging.getLogger("bench.retention")

ROOT = Path(__file__).resolve().parent.parent


def seed(path: Path, rows: int) -> None:
    """ROWS old messages, as `python -m app import` leaves them (schema at head first)."""
    url = f"sqlite+aiosqlite:///{path}"
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env={**os.environ, "CHAT_DATABASE_URL": url},
        check=True,
        capture_output=True,
    )
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=365)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    with bulk_load(db):
        _insert_old(db, rows, start)
    db.execute("COMMIT")
    db.close()


def _insert_old(db: sqlite3.Connection, rows: int, start: datetime) -> None:
    db.executemany(
        "INSERT INTO messages (id, room_id, text, created_at, author) VALUES (?, ?, ?, ?, ?)",
        (
            (
                n + 1,
                f"old-{n % 20}",
                f"an old message, number {n}, lorem ipsum dolor",
                (start + timedelta(seconds=n)).isoformat(" ", "microseconds"),
                "archivist",
            )
            for n in range(rows)
        ),
    )


async def echo_until(url: str, done: object) -> list[float]:
    """Echo every 10 ms until `done()`; each echo's seconds."""
    times: list[float] = []
    async with connect(url) as ws:
        while not done():  # type: ignore[operator]
            began = time.perf_counter()
            await ws.send(f"live {len(times)}")
            await ws.recv()
            times.append(time.perf_counter() - began)
            await asyncio.sleep(0.01)
    return times


async def one_round(mode: str, rows: int, workdir: Path) -> list[float]:
    seed(workdir / "chat.db", rows)
    env = {"CHAT_RATE_LIMIT": "0"}
    if mode == "task":
        env |= {"CHAT_RETENTION_DAYS": "30", "CHAT_RETENTION_INTERVAL": "2"}
    server = ServerProcess(workdir, env).start()
    try:
        url = server.ws("live")
        if mode == "task":
            done = f"retention: deleted {rows} message(s)"
            return await echo_until(url, lambda: done in server.log())
        prune = subprocess.Popen(
            [sys.executable, "-m", "app", "prune", "--older-than", "30d"],
            cwd=ROOT,
            env={**os.environ, "CHAT_DATABASE_URL": server.database_url},
            stdout=subprocess.PIPE,
        )
        times = await echo_until(url, lambda: prune.poll() is not None)
        assert prune.returncode == 0
        return times
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retention", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results: dict[str, list[tuple[float, float]]] = {"task": [], "cli": []}
    for round_no in range(args.rounds):
        for mode in results:
            with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
                times = sorted(asyncio.run(one_round(mode, args.rows, Path(tmp))))
            worst, p99 = times[-1], times[int(len(times) * 0.99)]
            results[mode].append((worst, p99))
            log.info(
                "round %d %-4s: %d echoes, worst %.1f ms, p99 %.1f ms",
                round_no + 1, mode, len(times), worst * 1000, p99 * 1000,
            )  # fmt: skip
    for mode, runs in results.items():
        log.info(
            "%s: worst echo %.1f ms, p99 %.1f ms (medians of %d rounds, %d rows)",
            mode,
            statistics.median(w for w, _ in runs) * 1000,
            statistics.median(p for _, p in runs) * 1000,
            len(runs),
            args.rows,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
