"""One server process vs two behind Redis: throughput and latency of fan-out across processes.

    python -m bench.multiprocess [--rooms 20] [--listeners 10] [--seconds 8]

Needs the PostgreSQL and Redis of shared/SERVICES.md; makes a database of its own and drops it.
Each room has one sender, closed loop with a few messages in flight (it sends the next one when
its own echo comes back), and `--listeners` listening clients. Setups, all on PostgreSQL:
- `1 process`: in-process fan-out (no Redis);
- `1 process + Redis`: the same process, fan-out through Redis;
- `2 processes + Redis`: each room's clients split between two processes, so every message
  crosses Redis to reach half of its listeners.
Latency is from the sender's send to a listener's receipt (one clock: the generator's).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

import asyncpg
import httpx
from websockets.asyncio.client import ClientConnection, connect

log = logging.getLogger("bench.multiprocess")

ROOT = Path(__file__).resolve().parent.parent
PG = "postgresql+asyncpg://root@127.0.0.1:5432/"
REDIS = "redis://127.0.0.1:6379/0"
IN_FLIGHT = 4


@dataclass
class Tally:
    sent: int = 0
    received: int = 0
    latencies: list[float] = field(default_factory=list)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str], workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    logfile = (workdir / f"server-{port}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=logfile,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server on {port} did not start; see {workdir}")


async def listen(ws: ClientConnection, tally: Tally, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            frame = await asyncio.wait_for(ws.recv(), 0.5)
        except TimeoutError:
            continue
        sent_at = int(str(frame).rpartition(" ")[2])
        tally.received += 1
        tally.latencies.append((time.perf_counter_ns() - sent_at) / 1e6)


async def send(ws: ClientConnection, tally: Tally, stop: asyncio.Event) -> None:
    for _ in range(IN_FLIGHT):
        await ws.send(f"t {time.perf_counter_ns()}")
        tally.sent += 1
    while not stop.is_set():
        try:
            await asyncio.wait_for(ws.recv(), 0.5)  # our own echo: the next may go
        except TimeoutError:
            continue
        await ws.send(f"t {time.perf_counter_ns()}")
        tally.sent += 1


async def run_load(
    ports: list[int], rooms: int, listeners: int, seconds: float
) -> dict[str, float]:
    tally, stop = Tally(), asyncio.Event()
    clients: list[ClientConnection] = []
    tasks = []
    for r in range(rooms):
        room = f"bench-{uuid.uuid4().hex[:8]}-{r}"
        for n in range(listeners):
            port = ports[n % len(ports)]
            ws = await connect(f"ws://127.0.0.1:{port}/{room}", max_queue=None)
            clients.append(ws)
            tasks.append(asyncio.create_task(listen(ws, tally, stop)))
        ws = await connect(f"ws://127.0.0.1:{ports[r % len(ports)]}/{room}", max_queue=None)
        clients.append(ws)
        tasks.append(asyncio.create_task(send(ws, tally, stop)))
    await asyncio.sleep(1.0)  # warm-up, not counted
    tally.received, tally.sent, tally.latencies = 0, 0, []
    await asyncio.sleep(seconds)
    stop.set()
    received, sent, latencies = tally.received, tally.sent, sorted(tally.latencies)
    await asyncio.gather(*tasks)
    for ws in clients:
        await ws.close()
    return {
        "messages/s": sent / seconds,
        "deliveries/s": received / seconds,
        "p50 ms": statistics.median(latencies) if latencies else float("nan"),
        "p99 ms": latencies[int(len(latencies) * 0.99)] if latencies else float("nan"),
    }


async def pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="root", database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def measure(setup: str, processes: int, redis: bool, args: argparse.Namespace) -> dict[str, float]:
    db = f"chat_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{db}"'))
    env = {
        "CHAT_DATABASE_URL": PG + db,
        "CHAT_REDIS_URL": REDIS if redis else "",
        "CHAT_REDIS_CHANNEL_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        "CHAT_RATE_LIMIT": "0",
    }
    try:
        with TemporaryDirectory() as tmp, ExitStack() as stack:
            ports = []
            for _ in range(processes):
                proc, port = start_server(env, Path(tmp))
                stack.callback(lambda p=proc: (p.terminate(), p.wait(20)))
                ports.append(port)
                env["CHAT_AUTO_MIGRATE"] = "0"
            result = asyncio.run(run_load(ports, args.rooms, args.listeners, args.seconds))
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    log.info("%-20s %s", setup, "  ".join(f"{k} {v:8.1f}" for k, v in result.items()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.multiprocess",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--listeners", type=int, default=10, help="listening clients per room")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log.info(
        "%d rooms x (1 sender, %d in flight + %d listeners), %.0f s, %d cores",
        args.rooms,
        IN_FLIGHT,
        args.listeners,
        args.seconds,
        os.cpu_count() or 1,
    )
    measure("1 process", 1, False, args)
    measure("1 process + Redis", 1, True, args)
    measure("2 processes + Redis", 2, True, args)


if __name__ == "__main__":
    main()
