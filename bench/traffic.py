"""Room traffic: clients that send timestamped messages through a window and record what they get.

A message's text is `sender:seq:send_ns:padding`. A message is complete once every reading
client of its room (its sender included, through "You wrote") has it; each sender keeps at most
`window` incomplete messages. Frames counted are those reaching reading clients, echoes included.

With `keyed` the senders speak `chat.v2.json` (JSON send frames, each with its own client key
made the way the page makes it: a UUID of version 7, time first) while the other clients read
plain text.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from array import array
from dataclasses import dataclass, field

import orjson

from bench.cpu import CpuProbe
from bench.wsclient import WsClient, close_all, connect

WARMUP = b"w"
V2 = "chat.v2.json"


@dataclass(slots=True)
class Client:
    index: int
    reading: bool = True
    keyed: bool = False  # sends `chat.v2.json` frames with client keys
    conn: WsClient | None = None
    warm: bool = False
    got: list[tuple[int, int]] = field(default_factory=list)


class Room:
    def __init__(self, tally: Tally, name: str, size: int, slow: int = 0, keyed: int = 0) -> None:
        """The first `keyed` clients (the senders) speak `chat.v2.json`."""
        self.tally = tally
        self.name = name
        self.clients = [Client(i, reading=i < size - slow, keyed=i < keyed) for i in range(size)]
        self.readers = size - slow
        self._pending: dict[tuple[int, int], int] = {}
        self._windows: dict[int, asyncio.Semaphore] = {}
        self.sent = 0

    async def connect(self, host: str, port: int, rcvbuf_slow: int) -> None:
        async def one(client: Client) -> None:
            client.conn = await connect(
                host,
                port,
                f"/{self.name}",
                lambda p, now: self._on_text(client, p, now),
                rcvbuf=None if client.reading else rcvbuf_slow,
                subprotocol=V2 if client.keyed else None,
            )

        await asyncio.gather(*(one(c) for c in self.clients))

    async def warm_up(self, timeout: float = 15.0) -> None:
        """Send throwaway messages until every client got one: all are registered in the room."""
        deadline = time.monotonic() + timeout
        sender = self.clients[0].conn
        assert sender is not None
        warmup = _send_frame(WARMUP) if self.clients[0].keyed else WARMUP
        while not all(c.warm for c in self.clients):
            if time.monotonic() > deadline:
                raise TimeoutError(f"room {self.name}: clients never saw the warm-up message")
            sender.send_text(warmup)
            await asyncio.sleep(0.02)
        for client in self.clients:
            if not client.reading and client.conn and client.conn.transport:
                client.conn.transport.pause_reading()

    async def send(self, client: Client, count: int, window: int, pad: bytes) -> None:
        conn = client.conn
        assert conn is not None
        gate = self._windows[client.index] = asyncio.Semaphore(window)
        for seq in range(count):
            await gate.acquire()
            text = b"%d:%d:%d:%s" % (client.index, seq, time.perf_counter_ns(), pad)
            if client.keyed:
                text = _send_frame(text, _page_key())
            conn.send_text(text)
            self.sent += 1
            self.tally.started()

    async def send_paced(
        self, client: Client, count: int, rate: float, pad: bytes, start_ns: int
    ) -> None:
        """Open loop: message `seq` is due at `start_ns + seq / rate` whatever the server does,
        and its latency counts from that due time, so a server that falls behind is charged
        for the wait of the messages queued behind (no coordinated omission)."""
        conn = client.conn
        assert conn is not None
        self._windows[client.index] = asyncio.Semaphore(count)  # never waited on
        interval = 1e9 / rate
        for seq in range(count):
            due = start_ns + int(seq * interval)
            ahead = due - time.perf_counter_ns()
            if ahead > 0:
                await asyncio.sleep(ahead / 1e9)
            text = b"%d:%d:%d:%s" % (client.index, seq, due, pad)
            if client.keyed:
                text = _send_frame(text, _page_key())
            conn.send_text(text)
            self.sent += 1
            self.tally.started()

    def _on_text(self, client: Client, payload: bytes, now: int) -> None:
        if client.keyed:
            frame = orjson.loads(payload)
            if frame["type"] != "message":
                return  # history_end
            # The sender's own copy is the one with its client key: with tokens every client of
            # one `sub` gets `own`, and the bench's clients share one.
            own, body = frame.get("key") is not None, frame["text"].encode()
        else:
            own = payload[0] == 89  # b"Y": "You wrote: "
            body = payload[11:] if own else payload[15:]
        if body[:1] == WARMUP:
            client.warm = True
            return
        if not client.reading:
            return
        sender, seq, sent, _ = body.split(b":", 3)
        key = (int(sender), int(seq))
        client.got.append(key)
        self.tally.received(now, now - int(sent), own=own)
        left = self._pending.get(key, self.readers) - 1
        if left:
            self._pending[key] = left
        else:
            self._pending.pop(key, None)
            self._windows[key[0]].release()

    def verify(self, expected: int) -> dict[str, object]:
        """Exactly once: every reading client got each of the room's `expected` messages once.
        Same order: all reading clients got them in one order."""
        readers = [c for c in self.clients if c.reading]
        exactly_once = all(len(c.got) == expected == len(set(c.got)) for c in readers)
        same_order = all(c.got == readers[0].got for c in readers)
        return {"exactly_once": exactly_once, "same_order": same_order}

    async def slow_close_codes(self, wait: float = 2.0) -> list[int | None]:
        """Let the slow clients read again, to learn whether the server closed them and how."""
        slow = [c.conn for c in self.clients if not c.reading and c.conn is not None]
        for conn in slow:
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.resume_reading()
        if slow:
            await asyncio.wait([c.lost for c in slow], timeout=wait)
        return [c.close_code for c in slow]

    async def close(self) -> None:
        await close_all([c.conn for c in self.clients if c.conn is not None], timeout=3.0)


class Tally:
    """Frames and latencies of a whole run; timestamps in perf_counter_ns."""

    def __init__(self) -> None:
        self.first_send = 0
        self.last_frame = 0
        self.last_progress = time.monotonic()
        self.frames = 0
        self.latency = array("q")
        self.echo = array("q")

    def started(self) -> None:
        if not self.first_send:
            self.first_send = time.perf_counter_ns()

    def received(self, now: int, latency: int, *, own: bool) -> None:
        self.frames += 1
        self.last_frame = now
        self.last_progress = time.monotonic()
        (self.echo if own else self.latency).append(latency)


async def run_rooms(
    rooms: list[Room],
    senders: dict[Room, list[int]],
    *,
    host: str,
    port: int,
    count: int,
    window: int,
    pad: bytes,
    stall: float,
    cpu: CpuProbe,
    rcvbuf_slow: int = 4096,
    rate: float | None = None,
) -> dict[str, object]:
    """Connect and warm up every room, send, wait for completion or `stall` s without progress.

    With `rate` (messages/s over all senders together) the senders are paced, open loop, each
    at its share of the rate and offset from the others; otherwise each keeps `window`
    messages in flight (closed loop: saturation)."""
    tally = rooms[0].tally
    for start in range(0, len(rooms), 10):  # a few rooms at a time: the listen backlog is finite
        await asyncio.gather(
            *(r.connect(host, port, rcvbuf_slow) for r in rooms[start : start + 10])
        )
    await asyncio.gather(*(r.warm_up() for r in rooms))
    await asyncio.sleep(0.05)  # late warm-up echoes out of the way
    tally.last_progress = time.monotonic()
    expected = sum(len(senders[r]) * count * r.readers for r in rooms)
    cpu.start()
    if rate is None:
        sending = [
            asyncio.create_task(r.send(r.clients[i], count, window, pad))
            for r in rooms
            for i in senders[r]
        ]
    else:
        pairs = [(r, i) for r in rooms for i in senders[r]]
        share = rate / len(pairs)
        start = time.perf_counter_ns() + 50_000_000
        sending = [
            asyncio.create_task(
                r.send_paced(r.clients[i], count, share, pad, start + int(n * 1e9 / rate))
            )
            for n, (r, i) in enumerate(pairs)
        ]
    complete = True
    while tally.frames < expected:
        await asyncio.sleep(0.05)
        if time.monotonic() - tally.last_progress > stall:
            complete = False
            break
    end = tally.last_frame if complete else time.perf_counter_ns()
    cpu.stop()
    for task in sending:
        task.cancel()
    checks = [r.verify(len(senders[r]) * count) for r in rooms]
    elapsed = max(end - tally.first_send, 1) / 1e9
    result: dict[str, object] = {
        "frames": tally.frames,
        "expected_frames": expected,
        "delivered": tally.frames / expected if expected else 1.0,
        "seconds": elapsed,
        "frames_per_s": tally.frames / elapsed,
        "latency_ms": percentiles(tally.latency),
        "echo_ms": percentiles(tally.echo),
        "exactly_once": all(c["exactly_once"] for c in checks),
        "same_order": all(c["same_order"] for c in checks),
    }
    result["slow_closed"] = [
        code for r in rooms for code in await r.slow_close_codes(min(stall, 2.0))
    ]
    await asyncio.gather(*(r.close() for r in rooms))
    return result


def _page_key() -> bytes:
    """A client key as the page makes one (`timeOrderedKey` in app/static/outbox.js): a UUID of
    version 7, the time in milliseconds in its first 48 bits, the rest random."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10)) & _RANDOM_BITS
    return str(uuid.UUID(int=value | _VERSION_7)).encode()


_RANDOM_BITS = (1 << 80) - 1 & ~(0xF << 76) & ~(0x3 << 62)  # without version and variant
_VERSION_7 = 0x7 << 76 | 0x2 << 62  # version 7, the RFC's variant (binary 10)


def _send_frame(text: bytes, key: bytes | None = None) -> bytes:
    """A `chat.v2.json` send frame; `text` must need no JSON escaping (the bench's do not)."""
    if key is None:
        return b'{"type":"send","text":"%s"}' % text
    return b'{"type":"send","text":"%s","key":"%s"}' % (text, key)


def percentiles(values_ns: array[int] | list[int]) -> dict[str, float]:
    quantiles = (50, 95, 99, 99.9)
    if not values_ns:
        return {f"p{q}": float("nan") for q in quantiles}
    ordered = sorted(values_ns)
    last = len(ordered) - 1
    return {f"p{q}": ordered[min(last, round(last * q / 100))] / 1e6 for q in quantiles}
