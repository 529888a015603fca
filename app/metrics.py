"""The Prometheus metrics, all in one place, and their exposition for `GET /metrics`.

What the hot path pays: per batch, a counter and a few histogram observations (the writer);
per socket write, `TALLY.frames_sent += n` on a plain int; per server-initiated close, a counter
bound to its code once. Gauges (connections, rooms, queues, the Redis link) and the plain ints
are read from the hub and the writer by `Sampler.sample()`, at scrape time.

With several worker processes (`python -m app --workers N` sets PROMETHEUS_MULTIPROC_DIR to a
fresh directory) prometheus-client's multiprocess mode adds up every process's files, so any
process answers for all: each process then also samples itself every `SAMPLE_EVERY` seconds,
since another process may be the one that is scraped.
"""

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_fastapi_instrumentator import metrics as http_metrics

if TYPE_CHECKING:
    from app.chat import Chat

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
SAMPLE_EVERY = 1.0
# Latencies from 100 µs to 10 s.
SECONDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
           2.5, 5.0, 10.0)  # fmt: skip

MESSAGES_STORED = Counter("chat_messages_stored", "Messages committed to the database")
DELETED = Counter("chat_messages_deleted", "Messages deleted on request (DELETE)")
EXPIRED = Counter("chat_messages_expired", "Messages deleted by retention or prune")
COMMIT_FAILURES = Counter(
    "chat_commit_failures", "Batches whose commit failed (their senders were closed with 1011)"
)
COMMIT_BATCH_SIZE = Histogram(
    "chat_commit_batch_size",
    "Messages per commit (group commit)",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000),
)
COMMIT_SECONDS = Histogram("chat_commit_seconds", "Time of one batch's commit", buckets=SECONDS)
COMMIT_WAIT_SECONDS = Histogram(
    "chat_commit_wait_seconds",
    "How long the oldest message of each batch waited, from its arrival to its commit's start",
    buckets=SECONDS,
)
FANOUT_SECONDS = Histogram(
    "chat_fanout_seconds",
    "From a committed message reaching this process's hub (with Redis: on its arrival from "
    "Redis) to the last of its frames written to a socket; sampled, one message at a time",
    buckets=SECONDS,
)
JOIN_SECONDS = Histogram(
    "chat_join_seconds",
    "From a WebSocket's accept to its history read and handed to its sender",
    buckets=SECONDS,
)
REPLAY_MESSAGES = Histogram(
    "chat_replay_messages",
    "Messages replayed to a joiner",
    buckets=(0, 1, 10, 50, 100, 250, 500, 1000),
)
FRAMES_SENT = Counter("chat_frames_sent", "Text frames written to WebSockets")
CLOSES = Counter(
    "chat_closes", "WebSocket closes the server initiated, by close code", labelnames=("code",)
)
CONNECTIONS = Gauge("chat_connections", "Open WebSockets", multiprocess_mode="livesum")
ROOMS = Gauge(
    "chat_rooms",
    "Rooms with connections (with several processes: summed over processes)",
    multiprocess_mode="livesum",
)
WRITER_QUEUE = Gauge(
    "chat_writer_queue",
    "Messages accepted but not yet committed and handed on",
    multiprocess_mode="livesum",
)
FRAMES_QUEUED = Gauge(
    "chat_frames_queued", "Frames waiting in connections' queues", multiprocess_mode="livesum"
)
BROKER_LINK_UP = Gauge(
    "chat_broker_link_up",
    "1 while the link to the fan-out between processes (Redis) is up, 0 while it is down in any "
    "process; absent without Redis",
    labelnames=("broker",),
    multiprocess_mode="livemin",
)

# HTTP requests by route template and status (prometheus-fastapi-instrumentator's names),
# made once per process: a second app in the same process shares them.
HTTP = http_metrics.default()

# Bound once: a close is counted without a label lookup.
_CLOSES = {code: CLOSES.labels(str(code)) for code in (1001, 1003, 1007, 1008, 1009, 1011,
                                                       1012, 1013, 4401, 4403)}  # fmt: skip


class Tally:
    """Counts bumped per frame: plain ints, moved to their counters when sampled."""

    __slots__ = ("frames_sent",)

    def __init__(self) -> None:
        self.frames_sent = 0


TALLY = Tally()


def closed(code: int) -> None:
    """The server closes a WebSocket with `code`."""
    child = _CLOSES.get(code)
    if child is None:
        child = _CLOSES[code] = CLOSES.labels(str(code))
    child.inc()


def committed(size: int, began: float, oldest_arrival: float) -> None:
    """A batch of `size` committed; its commit began at `began` (monotonic), and its oldest
    message arrived at `oldest_arrival` (wall clock)."""
    now = time.monotonic()
    MESSAGES_STORED.inc(size)
    COMMIT_BATCH_SIZE.observe(size)
    COMMIT_SECONDS.observe(now - began)
    COMMIT_WAIT_SECONDS.observe(max(0.0, time.time() - (now - began) - oldest_arrival))


def joined(began: float, replayed: int) -> None:
    JOIN_SECONDS.observe(time.monotonic() - began)
    REPLAY_MESSAGES.observe(replayed)


class FanoutProbe:
    """One message's fan-out, timed until every connection it was pushed to has written it.

    The hub probes one message at a time, at most every few milliseconds; each connection
    reports when its queue has passed the message (`passed`) or when it closed without writing
    it (`dropped`). The time observed is
    that of the last frame written. A probe older than `GIVE_UP` seconds is abandoned, so that
    a client that neither reads nor closes does not stop the sampling.
    """

    GIVE_UP = 30.0
    __slots__ = ("last", "message_id", "remaining", "started")

    def __init__(self, message_id: int, started: float) -> None:
        self.message_id = message_id
        self.started = started
        self.last = 0.0
        self.remaining = 0

    def finished(self, now: float) -> bool:
        return self.remaining <= 0 or now - self.started > self.GIVE_UP

    def passed(self) -> None:
        self.last = time.monotonic()
        self._one_less()

    def dropped(self) -> None:
        self._one_less()

    def _one_less(self) -> None:
        self.remaining -= 1
        if self.remaining == 0 and self.last and self.last - self.started <= self.GIVE_UP:
            FANOUT_SECONDS.observe(self.last - self.started)


@dataclass(slots=True)
class Sampler:
    """Reads this process's live state into the gauges, and the tallies into their counters."""

    chat: "Chat"
    frames_sent: int = 0

    def sample(self) -> None:
        hub, writer = self.chat.hub, self.chat.writer
        CONNECTIONS.set(hub.connections)
        ROOMS.set(hub.rooms)
        FRAMES_QUEUED.set(hub.queued_frames)
        WRITER_QUEUE.set(writer.queued)
        link_up = getattr(self.chat.broker, "link_up", None)
        if link_up is not None:
            BROKER_LINK_UP.labels("redis").set(1 if link_up else 0)
        sent = TALLY.frames_sent
        FRAMES_SENT.inc(sent - self.frames_sent)
        self.frames_sent = sent

    async def every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            self.sample()


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_DIR) or None


def exposition() -> tuple[bytes, str]:
    """The text exposition of every metric (of every process, in multiprocess mode). It reads
    files in multiprocess mode: call it off the event loop."""
    registry: Any = REGISTRY
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def process_ended() -> None:
    """In multiprocess mode, an ending process's gauges stop counting (its counters stay)."""
    if path := multiprocess_dir():
        with contextlib.suppress(OSError):
            multiprocess.mark_process_dead(os.getpid(), path)
