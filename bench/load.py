"""The load generator, a process of its own: `python -m bench.load '<json list of specs>'` runs
the workloads one after the other against a running server and writes a JSON list to stdout.

Besides the workload's figures it reports the CPU used by itself and by the server (whose pid is
in the spec) over the same wall time: a generator near 100% of its core would be the bottleneck.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import random
import resource
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import psutil
import uvloop

from bench import wsclient
from bench.cpu import CpuProbe
from bench.traffic import V2, Room, Tally, percentiles, run_rooms
from bench.wsclient import WsClient, close_all, connect

HOST = "127.0.0.1"
JSON_SUBPROTOCOL = "chat.v1.json"  # the project's; its history_end frame says a join is done
Spec = dict[str, Any]


def _tag(spec: Spec) -> str:
    return f"{spec['workload']}-{uuid.uuid4().hex[:8]}"


async def rooms_workload(spec: Spec, cpu: CpuProbe) -> dict[str, Any]:
    """fan-out, many rooms and slow reader: R rooms of C clients, S senders each, M messages."""
    tally = Tally()
    tag = _tag(spec)
    rooms = [
        Room(
            tally,
            f"{tag}-{r}",
            spec["clients"],
            slow=spec.get("slow", 0),
            keyed=spec["senders"] if spec.get("keyed") else 0,
        )
        for r in range(spec["rooms"])
    ]
    senders = {room: list(range(spec["senders"])) for room in rooms}
    result = await run_rooms(
        rooms,
        senders,
        host=HOST,
        port=spec["port"],
        count=spec["messages"],
        window=spec["window"],
        pad=b"x" * spec["pad"],
        stall=spec["stall"],
        cpu=cpu,
        rate=spec.get("rate"),
    )
    result["readers"] = sum(room.readers for room in rooms)
    return result


async def join_workload(spec: Spec, cpu: CpuProbe) -> dict[str, Any]:
    """Fill a room with `replay` messages, then time joins until the replay is in."""
    room, port, replay = f"/{_tag(spec)}", spec["port"], spec["replay"]
    echoes = asyncio.Event()
    seen = 0

    def on_fill(payload: bytes, _now: int) -> None:
        nonlocal seen
        seen += payload.startswith(b"You wrote: ")
        if seen == replay:
            echoes.set()

    filler = await connect(HOST, port, room, on_fill)
    for i in range(replay):
        filler.send_text(b"history %d" % i)
    await asyncio.wait_for(echoes.wait(), 30)
    await close_all([filler])
    latencies = [await _one_join(port, room, replay) for _ in range(spec["joins"])]
    return {"join_ms": percentiles(latencies), "joins": len(latencies)}


async def _one_join(port: int, room: str, replay: int) -> int:
    done = asyncio.get_running_loop().create_future()
    count = 0

    def on_text(_payload: bytes, now: int) -> None:
        nonlocal count
        count += 1
        if count == replay and not done.done():
            done.set_result(now)

    start = time.perf_counter_ns()
    client = await connect(HOST, port, room, on_text)
    end = await asyncio.wait_for(done, 30)
    await close_all([client])
    return int(end) - start


async def retries_workload(spec: Spec, cpu: CpuProbe) -> dict[str, Any]:
    """The duplicate path: a `chat.v2.json` sender stores `messages` keyed messages, then sends
    every one again with its key (`window` in flight) and times the answers (retries/s). The
    room's `clients` plain readers must see none of the retries; each answer must carry the
    id its key was stored with."""
    room, port = f"/{_tag(spec)}", spec["port"]
    count, window = spec["messages"], spec["window"]
    answers: asyncio.Queue[tuple[str, int, int]] = asyncio.Queue()
    others = 0

    def on_sender(payload: bytes, now: int) -> None:
        frame = orjson.loads(payload)
        if frame["type"] == "message" and frame.get("key"):
            answers.put_nowait((frame["key"], frame["id"], now))

    def on_reader(_payload: bytes, _now: int) -> None:
        nonlocal others
        others += 1

    sender = await connect(HOST, port, room, on_sender, subprotocol=V2)
    readers = [await connect(HOST, port, room, on_reader) for _ in range(spec["clients"])]

    def send(seq: int) -> None:
        sender.send_text(b'{"type":"send","text":"retry me %d","key":"k-%d"}' % (seq, seq))

    async def round_trip() -> tuple[dict[str, int], list[int]]:
        ids: dict[str, int] = {}
        sent_at: dict[str, int] = {}
        latencies: list[int] = []
        for seq in range(min(window, count)):
            sent_at[f"k-{seq}"] = time.perf_counter_ns()
            send(seq)
        next_seq = min(window, count)
        while len(ids) < count:
            key, message_id, now = await asyncio.wait_for(answers.get(), 30)
            ids[key] = message_id
            latencies.append(now - sent_at[key])
            if next_seq < count:
                sent_at[f"k-{next_seq}"] = time.perf_counter_ns()
                send(next_seq)
                next_seq += 1
        return ids, latencies

    stored, _ = await round_trip()
    # The readers' copies of the originals are in (a loaded machine may take a while: a fixed
    # half second once saw 966 of 1,000).
    deadline = time.monotonic() + 15
    while others < count * len(readers) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    seen_before = others
    cpu.start()
    started = time.perf_counter_ns()
    again, latencies = await round_trip()
    elapsed = (time.perf_counter_ns() - started) / 1e9
    cpu.stop()
    await asyncio.sleep(0.5)  # anything the readers would wrongly get arrives meanwhile
    await close_all([sender, *readers])
    return {
        "retries": count,
        "seconds": elapsed,
        "retries_per_s": count / elapsed,
        "retry_ms": percentiles(latencies),
        "same_ids": again == stored,
        "originals_seen": seen_before,
        "others_saw_retries": others - seen_before,
    }


async def idle_workload(spec: Spec, cpu: CpuProbe) -> dict[str, Any]:
    """Open `connections` sockets over 100 rooms and measure the server's RSS growth.

    With `joined` (the project), each socket asks for JSON frames and counts as open once its
    `history_end` arrived: the project reads a snapshot per join after the handshake, and a
    generator that only waited for handshakes would measure a join storm, not idle sockets."""
    server = psutil.Process(spec["server_pid"])
    before = server.memory_info().rss
    tag, port, joined = _tag(spec), spec["port"], spec.get("joined", False)
    clients: list[WsClient] = []
    gate = asyncio.Semaphore(100)  # joins in progress at once: the backlog is finite

    async def one(i: int) -> None:
        async with gate:
            done = asyncio.get_running_loop().create_future()

            def on_text(payload: bytes, _now: int) -> None:
                if payload.startswith(b'{"type":"history_end"') and not done.done():
                    done.set_result(None)

            client = await connect(
                HOST,
                port,
                f"/{tag}-{i % 100}",
                on_text,
                subprotocol=JSON_SUBPROTOCOL if joined else None,
                deflate=spec.get("deflate", False),
            )
            clients.append(client)
            if joined:
                await asyncio.wait_for(done, 60)

    await asyncio.gather(*(one(i) for i in range(spec["connections"])))
    await asyncio.sleep(spec.get("settle", 2.0))
    after = server.memory_info().rss
    still_open = sum(1 for c in clients if not c.lost.done())
    await close_all(clients, timeout=30)
    return {
        "connections": len(clients),
        "still_open": still_open,
        "rss_before_mb": before / 2**20,
        "rss_after_mb": after / 2**20,
        "kb_per_connection": (after - before) / len(clients) / 1024,
    }


async def history_workload(spec: Spec, cpu: CpuProbe) -> dict[str, Any]:
    """p50/p99 of the newest page and of `before=` paging, over a keep-alive HTTP connection."""
    return await asyncio.to_thread(_history, spec)


def _history(spec: Spec) -> dict[str, Any]:
    rng = random.Random(4)
    conn = http.client.HTTPConnection(HOST, spec["port"], timeout=30)
    rooms, max_id, limit = spec["rooms"], spec["max_id"], spec["limit"]

    def timed(query: str) -> int:
        room = rng.choice(rooms)
        start = time.perf_counter_ns()
        conn.request("GET", f"/rooms/{room}/messages?{query}")
        response = conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter_ns() - start
        if response.status != 200 or not json.loads(body):
            raise RuntimeError(f"GET {room}?{query}: {response.status} {body[:200]!r}")
        return elapsed

    for _ in range(20):  # warm the connection and the page cache
        timed(f"limit={limit}")
    newest = [timed(f"limit={limit}") for _ in range(spec["requests"])]
    paging = [
        timed(f"limit={limit}&before={rng.randint(max_id // 2, max_id)}")
        for _ in range(spec["requests"])
    ]
    conn.close()
    return {"newest_ms": percentiles(newest), "before_ms": percentiles(paging)}


WORKLOADS: dict[str, Callable[[Spec, CpuProbe], Awaitable[dict[str, Any]]]] = {
    "rooms": rooms_workload,
    "join": join_workload,
    "idle": idle_workload,
    "retries": retries_workload,
    "history": history_workload,
}


async def measured(spec: Spec) -> dict[str, Any]:
    """Run the workload; CPU is measured over the room workloads' traffic phase (they restart
    and stop the probe around sending), over the whole of the others."""
    wsclient.QUERY = spec.get("query", "")
    probe = CpuProbe(spec["server_pid"])
    probe.start()
    result = await WORKLOADS[spec["workload"]](spec, probe)
    if spec["workload"] not in ("rooms", "retries"):
        probe.stop()
    result["server_cpu"], result["generator_cpu"] = probe.server, probe.generator
    result["server_off_loop_cpu"] = probe.server_off_loop
    return result


def main() -> None:
    specs = json.loads(sys.argv[1])
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = uvloop.run(_all(specs))
    sys.stdout.write(json.dumps(results) + "\n")


async def _all(specs: list[Spec]) -> list[dict[str, Any]]:
    return [await measured(spec) for spec in specs]


if __name__ == "__main__":
    main()
