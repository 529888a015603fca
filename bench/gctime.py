"""Run a module with Python's cyclic collector timed: `python -m bench.gctime MODULE ARGS...`
writes to $BENCH_GCTIME at exit the collector's CPU seconds (its thread's CPU time, so that a
pass preempted on a busy machine is not charged for the wait), its collections per generation
and the longest pass in wall time (used by bench/profile.py); SIGUSR1 writes them at once."""

import atexit
import gc
import json
import os
import runpy
import signal
import sys
import time
from pathlib import Path
from typing import Any

_started: list[tuple[float, float]] = []
_totals = {"seconds": 0.0, "collections": [0, 0, 0], "longest_ms": 0.0}


def _time(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started.append((time.thread_time(), time.perf_counter()))
        return
    if not _started:
        return
    cpu, wall = _started.pop()
    _totals["seconds"] += time.thread_time() - cpu  # type: ignore[operator]
    _totals["collections"][info["generation"]] += 1  # type: ignore[index]
    longest = max(_totals["longest_ms"], (time.perf_counter() - wall) * 1000)  # type: ignore[call-overload]
    _totals["longest_ms"] = longest


def _dump(*_: object) -> None:
    Path(os.environ["BENCH_GCTIME"]).write_text(json.dumps(_totals) + "\n")


def main() -> None:
    gc.callbacks.append(_time)
    atexit.register(_dump)
    signal.signal(signal.SIGUSR1, _dump)
    module, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
