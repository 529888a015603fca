"""`python -m bench`: the project against the naive and the ceiling baselines, side by side.

Each round starts every kind of server, then runs each room workload on every kind in turn,
each run in a fresh load-generator process (the order of the kinds rotates from round to round,
so that drift on a shared machine hits every kind alike, and the order of the workloads is
reversed every other round). History alternates its database sizes
over the rounds; idle connections run once per kind, each on a fresh server.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psutil

from bench import history, pace, report, search
from bench.plan import FULL, PROJECT_ONLY, QUICK, ROUND_WORKLOADS, Plan
from bench.release import prepare
from bench.servers import BASELINES, PINNED, ROOT, Server, generate, kind_of

log = logging.getLogger("bench")

# The default, side by side: the project as configured by default; with the in-memory store;
# with tokens on; with keyed chat.v2.json senders; with every feature on (tokens, keyed
# senders, /metrics scraped); the first release; the baselines. --quick runs QUICK_KINDS.
KINDS = ("project", "memory", "tokens", "keyed", "full", "release1", "naive", "ceiling", "durable")
QUICK_KINDS = ("project", "naive", "ceiling")
SEARCH_FULL = {"rows": 1_000_000, "rooms": 100, "requests": 200, "rounds": 5, "writes": 40_000}
SEARCH_QUICK = {"rows": 20_000, "rooms": 10, "requests": 10, "rounds": 1, "writes": 2_000}
Runs = dict[str, dict[str, list[dict[str, Any]]]]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round (seconds)")
    parser.add_argument("--rounds", type=int, help="rounds of the room workloads")
    parser.add_argument(
        "--kinds",
        help=f"servers to measure (default: {','.join(KINDS)}; with --quick "
        f"{','.join(QUICK_KINDS)}); also metrics,nometrics (the project scraped every "
        "second vs CHAT_METRICS=0) and the variants of bench/variant.py",
    )
    parser.add_argument(
        "--workloads", default=",".join((*ROUND_WORKLOADS, "history", "idle", "search"))
    )
    parser.add_argument("--idle", type=int, help="idle connections to open (default 10,000)")
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="idle clients offer permessage-deflate, as browsers do",
    )
    parser.add_argument(
        "--paced-rates",
        default="auto",
        help="the paced workloads' offered msgs/s: auto (half the naive design's saturation,"
        " measured at the start of the run; the default), plan (bench/plan.py's figures) or"
        " FANOUT,MANY",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="where bench.json and bench.png go"
        " (default: docs/, or a temporary directory with --quick)",
    )
    return parser.parse_args(argv)


def run_rounds(
    plan: Plan, kinds: list[str], workloads: list[str], workdir: Path, runs: Runs, *, inline: bool
) -> None:
    """The room workloads on every kind of server, `plan.rounds` times. A round starts all its
    servers at once (an idle server costs nothing) and runs each workload on every kind in
    turn, so that the runs compared are seconds apart; the order of the kinds rotates from round
    to round. `inline` (quick mode): one generator process per server runs all the workloads,
    history and idle included, to save process starts."""
    names = [w for w in ROUND_WORKLOADS if w in workloads]
    history_db = None
    if inline and "history" in workloads and "project" in kinds:
        history_db = _seed(plan, plan.history_sizes[0], workdir)
    for round_no in range(plan.rounds):
        order = kinds[round_no % len(kinds) :] + kinds[: round_no % len(kinds)]
        servers = {
            kind: Server(kind, workdir, database=history_db if kind == "project" else None)
            for kind in order
        }
        try:
            for server in servers.values():
                server.launch()
            for server in servers.values():
                server.wait_ready()
            if inline:
                _run_batches(plan, servers, names, workloads, history_db, runs)
            else:
                # Every other round runs the workloads in reverse: a server's state left by the
                # run before (its database and WAL grown) then weighs on each workload alike.
                for name in names if round_no % 2 == 0 else names[::-1]:
                    for kind, server in servers.items():
                        if name in PROJECT_ONLY and kind != "project":
                            continue
                        [result] = generate(server, [plan.specs[name]])
                        _record(runs, kind, name, result, round_no)
        finally:
            for server in servers.values():
                server.stop()


def _run_batches(
    plan: Plan,
    servers: dict[str, Server],
    names: list[str],
    workloads: list[str],
    history_db: Path | None,
    runs: Runs,
) -> None:
    for kind, server in servers.items():
        batch = [
            (name, plan.specs[name])
            for name in names
            if name not in PROJECT_ONLY or kind == "project"
        ]
        if kind == "project" and history_db is not None:
            size = plan.history_sizes[0]
            batch.append((f"history-{size}", _history_spec(plan, size)))
        if "idle" in workloads and kind != "memory":
            batch.append(("idle", _idle_spec(plan, kind)))
        results = generate(server, [spec for _, spec in batch])
        for (name, _), result in zip(batch, results, strict=True):
            _record(runs, kind, name, result, 0)


def _record(runs: Runs, kind: str, name: str, result: dict[str, Any], round_no: int) -> None:
    runs[kind][name].append(result)
    log.info("round %d %-8s %-13s %s", round_no + 1, kind, name, _brief(result))


def _seed(plan: Plan, size: int, workdir: Path) -> Path:
    path = workdir / f"history-{size}.db"
    started = time.monotonic()
    history.seed(path, size, plan.history["rooms"])
    log.info("seeded %d messages in %.1f s", size, time.monotonic() - started)
    return path


def _history_spec(plan: Plan, size: int) -> dict[str, Any]:
    return {**plan.history, "rooms": history.room_ids(plan.history["rooms"]), "max_id": size}


def run_history(plan: Plan, workdir: Path, runs: Runs) -> None:
    """Each size seeded once, then served alternately, one fresh server per size and round."""
    paths = {size: _seed(plan, size, workdir) for size in plan.history_sizes}
    for round_no in range(plan.rounds):
        for size, path in paths.items():
            with Server("project", workdir, database=path) as server:
                [result] = generate(server, [_history_spec(plan, size)])
            _record(runs, "project", f"history-{size}", result, round_no)


def run_idle(plan: Plan, kinds: list[str], workdir: Path, runs: Runs) -> None:
    for kind in kinds:
        with Server(kind, workdir) as server:
            [result] = generate(server, [_idle_spec(plan, kind)])
        _record(runs, kind, "idle", result, 0)


def _idle_spec(plan: Plan, kind: str) -> dict[str, Any]:
    return {**plan.idle, "joined": kind not in BASELINES}


def _brief(result: dict[str, Any]) -> str:
    keys = (
        "frames_per_s",
        "retries_per_s",
        "delivered",
        "latency_ms",
        "join_ms",
        "newest_ms",
        "kb_per_connection",
        "server_cpu",
        "server_off_loop_cpu",
        "generator_cpu",
    )
    return json.dumps({k: result[k] for k in keys if k in result})


def machine() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or _cpu_model(),
        "cores": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "system": platform.platform(),
        "pinned": PINNED,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    plan = QUICK if args.quick else FULL
    idle = {
        **plan.idle,
        **({"connections": args.idle} if args.idle else {}),
        **({"deflate": True} if args.deflate else {}),
    }
    plan = Plan(args.rounds or plan.rounds, plan.specs, idle, plan.history_sizes, plan.history)
    kinds = [
        k for k in (args.kinds or ",".join(QUICK_KINDS if args.quick else KINDS)).split(",") if k
    ]
    workloads = [w for w in args.workloads.split(",") if w]
    # Ten thousand sockets on each side: children inherit the raised limit.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-")) if args.quick else ROOT / "docs")
    out.mkdir(parents=True, exist_ok=True)
    for release in {kind_of(k).release for k in kinds} - {None}:
        assert release is not None
        prepare(release)  # built once and cached: the first time takes a minute
    runs: Runs = defaultdict(lambda: defaultdict(list))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        paced: dict[str, Any] = {}
        if args.paced_rates == "auto" and not args.quick:
            plan, paced = pace.calibrate(plan, workloads, workdir)
        elif args.paced_rates not in ("auto", "plan"):
            plan, paced = pace.fixed(plan, args.paced_rates)
        run_rounds(plan, kinds, workloads, workdir, runs, inline=args.quick)
        if not args.quick and "history" in workloads and "project" in kinds:
            run_history(plan, workdir, runs)
        if not args.quick and "idle" in workloads:
            run_idle(plan, [k for k in kinds if k != "memory"], workdir, runs)
        searched = None
        if "search" in workloads:
            searched = search.run(workdir, **(SEARCH_QUICK if args.quick else SEARCH_FULL))
    results = report.summarise(
        runs, plan.rounds, machine(), quick=args.quick, seconds=time.monotonic() - started
    )
    if paced:
        results["paced"] = paced
    if searched is not None:
        results["search"] = searched
        if not args.quick:  # tiny sizes in quick mode: its figures are no test of the targets
            targets_met = all(t["met"] for t in searched["targets"])
            results["checks_passed"] = results["checks_passed"] and targets_met
    (out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    report.chart(results, out / "bench.png")
    sys.stdout.write(report.table(results) + "\n")
    if searched is not None:
        sys.stdout.write("\n" + search.table(searched) + "\n")
    log.info("wrote %s and %s", out / "bench.json", out / "bench.png")
    return 0 if results["checks_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
