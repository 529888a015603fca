"""The paced workloads' offered rate, set on the machine the run is on.

Issue 16 defines the ordinary load as open-loop senders at about half the naive design's
saturation rate. The figures first written in `bench/plan.py` (800 msgs/s into one room of 100,
15,000 msgs/s over 50 rooms of 4) were half of it on the machine of `shared/MEASURED.md`; on a
slower machine they are at or past the naive design's saturation, and the paced workloads then
compare queues (every kind's p50 in hundreds of ms), not an ordinary load.

So, unless told otherwise, a run starts by measuring it: a naive server, each paced workload's
saturated counterpart (`fanout`, `many`) run `RUNS` times, and the offered rate set to
`FRACTION` of the median messages/s, for `SECONDS` of sending. The rates and what they were
derived from go into bench.json and the report.
"""

from __future__ import annotations

import logging
import statistics
from pathlib import Path
from typing import Any

from bench.plan import Plan, Spec
from bench.servers import Server, generate

log = logging.getLogger(__name__)

FRACTION = 0.5
SECONDS = 5.0
RUNS = 3
# Each paced workload and the closed-loop workload of the same rooms whose saturation sets it.
SATURATED = {"paced-fanout": "fanout", "paced-many": "many"}


def paced(spec: Spec, rate: float, seconds: float = SECONDS) -> Spec:
    """`spec` offered `rate` messages/s over all its senders, for about `seconds`."""
    senders = spec["rooms"] * spec["senders"]
    return {**spec, "rate": rate, "messages": max(1, round(rate * seconds / senders))}


def messages_per_s(spec: Spec, result: dict[str, Any]) -> float:
    """A rooms workload's messages/s: each message reaches every client of its room once."""
    return float(result["frames_per_s"]) / spec["clients"]


def calibrate(plan: Plan, workloads: list[str], workdir: Path) -> tuple[Plan, dict[str, Any]]:
    """`plan` with its paced workloads offered FRACTION of the naive design's saturation,
    measured now; and what was measured, for the report."""
    wanted = [name for name in SATURATED if name in workloads]
    if not wanted:
        return plan, {}
    specs = dict(plan.specs)
    measured: dict[str, Any] = {}
    with Server("naive", workdir) as server:
        for name in wanted:
            closed = plan.specs[SATURATED[name]]
            saturation = statistics.median(
                messages_per_s(closed, result)
                for result in (generate(server, [closed])[0] for _ in range(RUNS))
            )
            rate = round(FRACTION * saturation, -1) or FRACTION * saturation
            specs[name] = paced(plan.specs[name], rate)
            measured[name] = {
                "naive_saturation_msgs_per_s": round(saturation, 1),
                "rate_msgs_per_s": rate,
                "messages_per_sender": specs[name]["messages"],
            }
            log.info(
                "%s: naive saturates at %.0f msgs/s (%s, median of %d): offered %.0f msgs/s",
                name,
                saturation,
                SATURATED[name],
                RUNS,
                rate,
            )
    return Plan(plan.rounds, specs, plan.idle, plan.history_sizes, plan.history), measured


def fixed(plan: Plan, rates: str) -> tuple[Plan, dict[str, Any]]:
    """`plan` with the paced workloads offered the given "FANOUT,MANY" msgs/s."""
    parts = [float(part) for part in rates.split(",")]
    if len(parts) != len(SATURATED) or min(parts) <= 0:
        raise ValueError(f"--paced-rates wants two rates above 0, FANOUT,MANY, not {rates!r}")
    specs = dict(plan.specs)
    measured: dict[str, Any] = {}
    for name, rate in zip(SATURATED, parts, strict=True):
        specs[name] = paced(plan.specs[name], rate)
        measured[name] = {"rate_msgs_per_s": rate, "messages_per_sender": specs[name]["messages"]}
    return Plan(plan.rounds, specs, plan.idle, plan.history_sizes, plan.history), measured
