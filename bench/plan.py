"""What a run measures: the workloads' sizes in full and in quick mode."""

from dataclasses import dataclass, field
from typing import Any

Spec = dict[str, Any]

# Workloads that run in each round: against every kind of server, except those that need the
# project's own protocol (`chat.v2.json`), which run against the project alone.
ROUND_WORKLOADS = (
    "fanout",
    "fanout-keyed",
    "retries",
    "many",
    "slow",
    "noslow",
    "join",
    "paced-fanout",
    "paced-many",
)
PROJECT_ONLY = ("fanout-keyed", "retries")


@dataclass(frozen=True)
class Plan:
    rounds: int
    specs: dict[str, Spec]
    idle: Spec
    history_sizes: tuple[int, ...]
    history: Spec = field(default_factory=dict)


def _rooms(**sizes: Any) -> Spec:
    return {"workload": "rooms", "senders": 1, "slow": 0, "pad": 0, "stall": 3.0, **sizes}


FULL = Plan(
    rounds=3,
    specs={
        "fanout": _rooms(rooms=1, clients=100, messages=2000, window=32),
        # The same with the page's way of sending: JSON frames, each with its client key.
        "fanout-keyed": _rooms(rooms=1, clients=100, messages=2000, window=32, keyed=True),
        # The duplicate path: 2000 keys stored, then each sent again (100 readers see nothing).
        "retries": {"workload": "retries", "clients": 100, "messages": 2000, "window": 32},
        "many": _rooms(rooms=50, clients=4, senders=4, messages=100, window=8),
        # 5 MB for the slow reader: enough to fill its kernel buffers (the server's send buffer
        # autotunes up to 4 MB here) and then the project's queue of CHAT_SEND_QUEUE frames.
        "slow": _rooms(rooms=1, clients=20, messages=5000, window=32, pad=1000, slow=1),
        "noslow": _rooms(rooms=1, clients=20, messages=5000, window=32, pad=1000),
        "join": {"workload": "join", "replay": 50, "joins": 100},
        # An ordinary load, open loop, 5 s each: latency, not throughput, is what these
        # measure. These rates were half the naive design's saturation on MEASURED.md's
        # machine; a run replaces them with half of it measured on its own (bench/pace.py)
        # unless told `--paced-rates plan`.
        "paced-fanout": _rooms(rooms=1, clients=100, messages=4000, window=0, rate=800),
        "paced-many": _rooms(rooms=50, clients=4, senders=4, messages=375, window=0, rate=15_000),
    },
    idle={"workload": "idle", "connections": 10_000, "settle": 3.0},
    history_sizes=(10_000, 1_000_000),
    history={"workload": "history", "rooms": 100, "requests": 300, "limit": 50},
)

QUICK = Plan(
    rounds=1,
    specs={
        "fanout": _rooms(rooms=1, clients=10, messages=100, window=16),
        "fanout-keyed": _rooms(rooms=1, clients=10, messages=100, window=16, keyed=True),
        "retries": {"workload": "retries", "clients": 10, "messages": 100, "window": 16},
        "many": _rooms(rooms=4, clients=3, senders=3, messages=20, window=4),
        "slow": _rooms(rooms=1, clients=5, messages=300, window=16, pad=200, slow=1, stall=0.3),
        "noslow": _rooms(rooms=1, clients=5, messages=300, window=16, pad=200, stall=1.0),
        "join": {"workload": "join", "replay": 50, "joins": 5},
        "paced-fanout": _rooms(rooms=1, clients=10, messages=100, window=0, rate=200),
        "paced-many": _rooms(rooms=4, clients=3, senders=3, messages=20, window=0, rate=400),
    },
    idle={"workload": "idle", "connections": 200, "settle": 0.3},
    history_sizes=(2_000,),
    history={"workload": "history", "rooms": 10, "requests": 30, "limit": 50},
)
