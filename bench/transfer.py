"""`python -m bench.transfer`: export and import rates at 1,000,000 messages on SQLite (issue 13).

A database of N messages (bench/history.py: migrated, one bulk insert, search index built; two
thirds of them with an author) is seeded once; then, each round:
- export: `python -m app export -o FILE`, the command as an operator runs it;
- import: `python -m app import FILE` of that export into a fresh file (schema created,
  search index and room counts kept);
- again: the same import once more, every line already present.
Each is a child process, timed from start to exit (interpreter start-up and migrations
included): messages per second of wall time, and per CPU second of the child (user + system,
every thread), which other work on a shared machine disturbs less. Medians over the rounds.
Goals (issue 13): export >= 100,000 messages/s, import >= 50,000 messages/s.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import history

log = logging.getLogger("bench.transfer")

ROOT = Path(__file__).resolve().parent.parent
GOALS = {"export": 100_000, "import": 50_000}


def text(i: int) -> str:
    return f"message {i} of the transfer benchmark: a few ordinary words, as people write them"


def seed(path: Path, messages: int, rooms: int) -> None:
    started = time.monotonic()
    history.seed(path, messages, rooms, text=text)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE messages SET author = 'user ' || (id % 100) WHERE id % 3 != 0")
    log.info("seeded %d messages in %.1f s", messages, time.monotonic() - started)


def timed(database: Path, *args: str) -> tuple[float, float]:
    """Run `python -m app ARGS` on `database`: its wall time and CPU time, seconds."""
    env = {**os.environ, "CHAT_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"python -m app {' '.join(args)}: {result.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def reference(workdir: Path) -> float:
    """How fast this machine is now: µs per row of shared/MEASURED.md's plain insert (stdlib
    sqlite3, WAL, synchronous=NORMAL, 100,000 rows of ~100 bytes in 50 rooms, index on
    (room_id, id), batches of 1,000), which measured 2.7 µs on a quiet machine."""
    path = fresh(workdir / "reference.db")
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, room_id TEXT, text TEXT, at TEXT)")
        db.execute("CREATE INDEX ix ON m (room_id, id)")
        rows = [(f"room-{i % 50}", "x" * 80, "2026-01-01 00:00:00.000000") for i in range(100_000)]
        started = time.perf_counter()
        for start in range(0, len(rows), 1000):
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO m (room_id, text, at) VALUES (?, ?, ?)", rows[start : start + 1000]
            )
            db.execute("COMMIT")
        return (time.perf_counter() - started) / len(rows) * 1e6
    finally:
        db.close()


def fresh(path: Path) -> Path:
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def run(workdir: Path, *, messages: int, rooms: int, rounds: int) -> dict[str, Any]:
    source, exported = workdir / "source.db", workdir / "export.ndjson"
    seed(source, messages, rooms)
    times: dict[str, list[tuple[float, float]]] = {"export": [], "import": [], "again": []}
    speed: list[float] = []
    for round_no in range(rounds):
        speed.append(reference(workdir))
        times["export"].append(timed(source, "export", "-o", str(exported)))
        target = fresh(workdir / "target.db")
        times["import"].append(timed(target, "import", str(exported)))
        times["again"].append(timed(target, "import", str(exported)))
        log.info(
            "round %d (reference insert %.1f µs/row): %s",
            round_no + 1,
            speed[-1],
            ", ".join(f"{k} {messages / v[-1][0]:,.0f} msgs/s" for k, v in times.items()),
        )
    results = {
        name: {
            "msgs/s": statistics.median(messages / wall for wall, _ in runs),
            "msgs/cpu-s": statistics.median(messages / cpu for _, cpu in runs),
            "wall s": [round(wall, 2) for wall, _ in runs],
            "cpu s": [round(cpu, 2) for _, cpu in runs],
        }
        for name, runs in times.items()
    }
    return {
        "messages": messages,
        "rooms": rooms,
        "rounds": rounds,
        "results": results,
        "reference us/row": [round(us, 2) for us in speed],
    }


def table(summary: dict[str, Any]) -> str:
    lines = [
        f"| {summary['messages']:,} messages, SQLite | msgs/s (wall) | msgs/CPU-s | goal | met |",
        "|---|---|---|---|---|",
    ]
    names = {"export": "export", "import": "import", "again": "import again (all present)"}
    for key, name in names.items():
        r = summary["results"][key]
        goal = GOALS.get(key)
        met = "" if goal is None else ("yes" if r["msgs/s"] >= goal else "**no**")
        shown = f">= {goal:,}" if goal else ""
        lines.append(f"| {name} | {r['msgs/s']:,.0f} | {r['msgs/cpu-s']:,.0f} | {shown} | {met} |")
    lines.append(
        "\nThe machine meanwhile: "
        + ", ".join(f"{us:.1f}" for us in summary["reference us/row"])
        + " µs/row on MEASURED.md's plain SQLite insert (2.7 on a quiet machine)."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transfer", description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as workdir:
        summary = run(Path(workdir), messages=args.messages, rooms=args.rooms, rounds=args.rounds)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    sys.stdout.write(table(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
