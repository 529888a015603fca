"""Where the server's CPU goes per message: py-spy on one server during one workload
(`python -m bench.profile --kind project --workload paced-many --seconds 15`; needs py-spy and
the right to attach to a process, i.e. root or ptrace permission).

The server runs pinned as in `python -m bench`; the workload is the bench's, its message count
scaled so that sending lasts about `--seconds`. py-spy samples every thread (without idle
ones) and writes collapsed stacks; each sample is put in one stage of the message's path, from
the socket read to the last frame written, and the stage's share of samples times the server's
CPU time per message gives microseconds per message. Python's collector is timed from inside
the server (bench/gctime.py wraps its start), since py-spy attributes a collection to whatever
line allocated when it ran.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil

from bench.plan import FULL
from bench.servers import GENERATOR_CORE, ROOT, Server, _pin

log = logging.getLogger("bench.profile")

# (stage, markers): a sample goes to the first stage one of whose markers is in its stack (below
# the event loop's own frames), so the more specific stages come first: the fan-out runs inside
# the writer's call, the frame pushes inside the fan-out.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("database thread, Python side (aiosqlite, sqlite3 calls)", ("thread-not-main",)),
    ("fan-out: hub, frames, queue pushes", ("app/hub.py", "app/frames.py", "app/broker/")),
    ("send: per-connection tasks, encoding, transport.write", ("app/connection.py",)),
    (
        "writer and store on the loop (SQL, driver hops)",
        ("app/writer.py", "app/store.py", "app/sqlite_writer.py", "sqlalchemy/", "aiosqlite/"),
    ),
    ("socket route: receive, parse, checks, submit", ("app/routes/ws.py",)),
    (
        "socket read: uvicorn protocol, frame parsing",
        ("websockets_sansio_impl.py", "websockets/", "app/protocol.py"),
    ),
    ("ASGI and Starlette plumbing", ("starlette/", "fastapi/", "uvicorn/")),
    ("event loop itself (uvloop in C: polling, reads, callbacks)", ("<loop>",)),
    ("other", ("",)),
]
EMPTY: dict[str, Any] = {"seconds": 0.0, "collections": [0, 0, 0], "longest_ms": 0.0}
LOOP_ROOT = "Runner.run (asyncio/runners.py:118)"


def stage_of(stack: str) -> str:
    thread, _, frames = stack.partition(";")
    if "MainThread" not in thread:
        return STAGES[0][0]
    _, root, below = frames.partition(LOOP_ROOT)
    frames = (below.lstrip(";") or "<loop>") if root else frames
    for stage, markers in STAGES[1:]:
        if any(marker in frames for marker in markers):
            return stage
    return STAGES[-1][0]


def breakdown(raw: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack:
            counts[stage_of(stack)] += int(n)
    return counts


def hottest(raw: Path, top: int = 25) -> list[tuple[str, int]]:
    """Self samples per function (the leaf frame), the most first."""
    leaves: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack:
            leaves[stack.rsplit(";", 1)[-1]] += int(n)
    return leaves.most_common(top)


def scaled(workload: str, seconds: float, offered: float | None = None) -> dict[str, Any]:
    spec = dict(FULL.specs[workload])
    if offered and spec.get("rate"):
        spec["rate"] = offered  # as `python -m bench --paced-rates` offers it
    if spec.get("rate"):
        senders = spec["rooms"] * spec["senders"]
        spec["messages"] = int(spec["rate"] * seconds / senders)
    else:
        spec["messages"] = int(spec["messages"] * max(1.0, seconds / 2))
    spec["stall"] = 10.0
    return spec


def profile(
    kind: str, workload: str, seconds: float, rate: int, out: Path, offered: float | None = None
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    gc_file = out / f"{kind}-{workload}-gc.json"
    gc_file.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
        server = Server(kind, Path(tmp))
        if server.spec.release is None:
            # The same server, its collector timed (`python -m bench.gctime MODULE ARGS`; for
            # the app `--port` is then passed, to the same effect as CHAT_PORT).
            server.spec = replace(
                server.spec, command=("-m", "bench.gctime", *server.spec.command[1:])
            )
        os.environ["BENCH_GCTIME"] = str(gc_file)
        server.start()
        try:
            spec = {
                **scaled(workload, seconds, offered),
                "port": server.port,
                "server_pid": server.pid,
            }
            if server.spec.keyed and spec["workload"] == "rooms":  # as bench/servers.py sends
                spec["keyed"] = True
            generator = subprocess.Popen(
                [sys.executable, "-m", "bench.load", json.dumps([spec])],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                preexec_fn=_pin(GENERATOR_CORE),
            )
            time.sleep(2.0)  # connected and warmed up
            raw = out / f"{kind}-{workload}.txt"
            timed = server.spec.release is None
            gc0 = _collector(server.pid, gc_file) if timed else EMPTY
            cpu0 = psutil.Process(server.pid).cpu_times()
            # --gil: only the thread holding the GIL, so that a thread waiting (for the GIL, a
            # lock, epoll) is never counted as busy; what runs without the GIL (SQLite's C code,
            # fsync) is the server's CPU time less these samples.
            spy_args = ["--rate", str(rate), "--format", "raw", "--threads", "--gil"]
            spy = subprocess.Popen(
                ["py-spy", "record", "--pid", str(server.pid), *spy_args, "--output", str(raw)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            started = time.monotonic()
            stdout, _ = generator.communicate(timeout=seconds * 10 + 60)
            cpu1 = psutil.Process(server.pid).cpu_times()
            wall = time.monotonic() - started
            gc1 = _collector(server.pid, gc_file) if timed else EMPTY
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        finally:
            server.stop()
    [result] = json.loads(stdout)
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    # Messages sent while py-spy watched: the paced rate, or the run's average.
    messages = spec["messages"] * spec["rooms"] * spec["senders"]
    sent_share = min(1.0, wall / max(result["seconds"], 1e-9))
    per_message_us = cpu / (messages * sent_share) * 1e6
    counts = breakdown(raw)
    window = messages * sent_share
    stages = {stage: n / rate / window * 1e6 for stage, n in counts.items()}
    stages["outside the GIL: SQLite's C code, fsync, kernel"] = max(
        0.0, per_message_us - sum(stages.values())
    )
    gc_seconds = gc1["seconds"] - gc0["seconds"]
    return {
        "kind": kind,
        "workload": workload,
        "messages_per_s": round(messages / result["seconds"]),
        "server_cpu": round(cpu / wall, 3),
        "cpu_us_per_message": round(per_message_us, 2),
        "latency_ms": result["latency_ms"],
        "samples": sum(counts.values()),
        "gc_cpu_seconds": round(gc_seconds, 3),
        "gc_collections": [
            b - a for a, b in zip(gc0["collections"], gc1["collections"], strict=True)
        ],
        "gc_longest_ms_whole_run": round(gc1["longest_ms"], 1),
        "stages_us_per_message": {
            k: round(v, 2) for k, v in sorted(stages.items(), key=lambda kv: -kv[1])
        },
        "of_which_gc_us_per_message": round(gc_seconds / window * 1e6, 2),
        "hottest": hottest(raw),
    }


def _collector(pid: int, path: Path) -> dict[str, Any]:
    """The server's collector totals so far (bench/gctime.py writes them on SIGUSR1)."""
    path.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    for _ in range(50):
        if path.exists() and path.read_text().endswith("\n"):
            return json.loads(path.read_text())  # type: ignore[no-any-return]
        time.sleep(0.02)
    return EMPTY


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--kind", default="project")
    parser.add_argument("--workload", default="paced-many")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "profiles")
    parser.add_argument(
        "--offered", type=float, help="a paced workload's msgs/s (default: bench/plan.py's)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    report = profile(args.kind, args.workload, args.seconds, args.rate, args.out, args.offered)
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
