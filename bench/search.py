"""Search at scale, and what keeping its index costs the writer (SQLite).

- Latency: a database of N messages (1,000,000 in full) in which one word is in 0.1% of the
  messages, one in 10%, one in every message; then `GET /search` through a real server, the
  first page (20), sequentially: p50 and p95 per query.
- The writer: `Store.insert` of the same batches into two fresh databases, one keeping the
  search index in step (the project) and one not (its per-batch statement replaced by nothing),
  alternating, a few rounds: messages/s side by side and their ratio.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from app.db import create_engine
from app.schema import prepare_schema
from app.store import NewMessage, Store
from bench import history
from bench.bulk import INDEX_LINE, TRIGGER, insert_trigger_sql
from bench.servers import Server
from bench.writerconn import with_writer_setup

log = logging.getLogger("bench.search")
logging.getLogger("httpx").setLevel(logging.WARNING)

RARE, COMMON, EVERYWHERE = "quasar", "nebula", "message"
TINY = "tiny"  # a room of 50 messages among the oldest 1,000
# (label, q, room filter or None): the first page of each, newest first.
QUERIES = [
    ("word in 0.1%", RARE, None),
    ("word in 10%", COMMON, None),
    ("word in every message", EVERYWHERE, None),
    ("0.1% AND 10%", f"{RARE} {COMMON}", None),
    ("prefix, 10%", COMMON[:4] + "*", None),
    ("phrase, 10%", f'"{COMMON} drifts"', None),
    ("word in 10%, one room", COMMON, "history-0"),
    ("word in every message, a room of 50 old ones", EVERYWHERE, TINY),
]
TARGETS = {"word in 0.1%": 20.0, "word in 10%": 50.0}  # p50 ms, first page (issue 12)
WRITER_RATIO_GOAL = 0.8


def text(i: int) -> str:
    """Message i: the rare word in every 1000th, the common one in every 10th, filler else."""
    words = [EVERYWHERE, str(i), f"topic{i % 5003}", f"w{i % 997}"]
    mixed = (i * 2654435761) % 2**32 >> 12  # spread evenly over the rooms (round-robin)
    if mixed % 10 == 3:
        words += [COMMON, "drifts"]
    if mixed % 1000 == 3:  # so it also holds the common word
        words.append(RARE)
    return " ".join(words) + " about the benchmark"


def seed(path: Path, rows: int, rooms: int) -> None:
    started = time.monotonic()
    history.seed(path, rows, rooms, text=text)
    with sqlite3.connect(path) as db:
        moved = db.execute(
            "UPDATE messages SET room_id = ? WHERE id <= 1000 AND id % 20 = 0", (TINY,)
        ).rowcount
        db.execute(
            "INSERT INTO rooms (room_id, messages, last_message_id, last_message_at)"
            " SELECT room_id, count(*), max(id), max(created_at) FROM messages"
            " WHERE room_id = ? GROUP BY room_id",
            (TINY,),
        )
    assert moved == 50
    log.info("search: seeded and indexed %d messages in %.1f s", rows, time.monotonic() - started)


def measure_queries(path: Path, workdir: Path, requests: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with Server("project", workdir, database=path) as server, httpx.Client() as client:
        for label, q, room in QUERIES:
            params = {"q": q, **({"room_id": room} if room else {})}
            client.get(f"http://127.0.0.1:{server.port}/search", params=params)  # warm
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get(f"http://127.0.0.1:{server.port}/search", params=params)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200 and len(response.json()) == 20, response.text
            times.sort()
            results[label] = {
                "p50 ms": statistics.median(times),
                "p95 ms": times[int(len(times) * 0.95) - 1],
            }
            log.info("search: %-30s p50 %.2f ms", label, results[label]["p50 ms"])
    return results


def _unindexed(db: sqlite3.Connection) -> None:
    """Replace, in this database, the insert trigger by the same trigger without the search
    index's line: the writer then stores and counts as the project does, and indexes nothing
    (the store does not catch the index up either: every new message stays above its mark)."""
    sql = insert_trigger_sql(db)
    if INDEX_LINE not in sql:
        return  # replaced already (the connection was opened before)
    db.execute(f"DROP TRIGGER {TRIGGER}")
    db.execute(sql.replace(INDEX_LINE, ""))


UnindexedStore = with_writer_setup(_unindexed, "UnindexedStore", follow_search_index=False)


async def _write(
    store_type: type[Store], path: Path, batches: int, size: int, synchronous: str
) -> tuple[float, float]:
    """Messages per second of wall time, and per second of this process's CPU time (every
    thread: SQLite works in the writer's), which other work on a shared machine disturbs less."""
    path.unlink(missing_ok=True)
    engine = create_engine(f"sqlite+aiosqlite:///{path}", sqlite_synchronous=synchronous)
    try:
        await prepare_schema(engine, auto_migrate=True)
        store = store_type(engine)
        now = datetime.now(UTC)
        batch = [NewMessage(f"room-{i % 50}", text(i) + " " + "x" * 40, now) for i in range(size)]
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(batches):
            async with store.locked(m.room_id for m in batch) as tx:  # as app/writer.py does
                await tx.insert(batch)
                await tx.commit()
        count = batches * size
        await store.close()
        return count / (time.perf_counter() - started), count / (time.process_time() - cpu)
    finally:
        await engine.dispose()


def measure_writer(workdir: Path, rounds: int, messages: int) -> dict[str, Any]:
    """synchronous=FULL is what a server runs with by default (an fsync per commit, which
    dominates small batches); NORMAL shows the index's own cost, with no fsync to hide it."""
    results: dict[str, Any] = {}
    for synchronous, size in [("FULL", 100), ("FULL", 1000), ("NORMAL", 100), ("NORMAL", 1000)]:
        rates: dict[str, list[float]] = {"indexed": [], "unindexed": []}
        cpu_rates: dict[str, list[float]] = {"indexed": [], "unindexed": []}
        for round_no in range(rounds):
            kinds = [("indexed", Store), ("unindexed", UnindexedStore)]
            for name, store_type in kinds if round_no % 2 == 0 else kinds[::-1]:
                path = workdir / f"writer-{name}.db"
                wall, cpu = asyncio.run(
                    _write(store_type, path, messages // size, size, synchronous)
                )
                rates[name].append(wall)
                cpu_rates[name].append(cpu)
        indexed, unindexed = (statistics.median(rates[k]) for k in ("indexed", "unindexed"))
        cpu_indexed, cpu_unindexed = (
            statistics.median(cpu_rates[k]) for k in ("indexed", "unindexed")
        )
        results[f"{synchronous}, batches of {size}"] = {
            "indexed msgs/s": indexed,
            "unindexed msgs/s": unindexed,
            "ratio": indexed / unindexed,
            "indexed msgs/cpu-s": cpu_indexed,
            "unindexed msgs/cpu-s": cpu_unindexed,
            "cpu ratio": cpu_indexed / cpu_unindexed,
            "rounds": rates,
            "cpu rounds": cpu_rates,
        }
        log.info(
            "search: writer, %s, batches of %d: %.0f vs %.0f msgs/s",
            synchronous,
            size,
            indexed,
            unindexed,
        )
    return results


def run(
    workdir: Path, *, rows: int, rooms: int, requests: int, rounds: int, writes: int
) -> dict[str, Any]:
    path = workdir / f"search-{rows}.db"
    seed(path, rows, rooms)
    queries = measure_queries(path, workdir, requests)
    writer = measure_writer(workdir, rounds, messages=writes)
    targets = [
        {
            "target": f"search p50 ms, {label}, {rows:,} messages",
            "value": value,
            "goal": goal,
            "met": queries[label]["p50 ms"] < goal,
        }
        for label, goal in TARGETS.items()
        for value in [queries[label]["p50 ms"]]
    ] + [
        {
            "target": f"writer with index / without, {name}",
            "value": w["ratio"],
            "goal": WRITER_RATIO_GOAL,
            "met": w["ratio"] >= WRITER_RATIO_GOAL,
        }
        for name, w in writer.items()
    ]
    return {"rows": rows, "queries": queries, "writer": writer, "targets": targets}


def table(summary: dict[str, Any]) -> str:
    lines = [
        f"| search, {summary['rows']:,} messages (SQLite) | p50 ms | p95 ms |",
        "|---|---|---|",
    ]
    for label, times in summary["queries"].items():
        lines.append(f"| {label} | {times['p50 ms']:.2f} | {times['p95 ms']:.2f} |")
    lines += [
        "",
        "| writer (Store.insert) | with index msgs/s | without | ratio "
        "| with index msgs/cpu-s | without | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, w in summary["writer"].items():
        lines.append(
            f"| {name} | {w['indexed msgs/s']:,.0f} | {w['unindexed msgs/s']:,.0f} "
            f"| {w['ratio']:.2f} | {w['indexed msgs/cpu-s']:,.0f} "
            f"| {w['unindexed msgs/cpu-s']:,.0f} | {w['cpu ratio']:.2f} |"
        )
    lines += ["", "| search target | measured | goal | met |", "|---|---|---|---|"]
    for t in summary["targets"]:
        op = "<" if "ms" in t["target"] else ">="
        lines.append(
            f"| {t['target']} | {t['value']:.2f} | {op} {t['goal']} | "
            f"{'yes' if t['met'] else '**no**'} |"
        )
    return "\n".join(lines)
