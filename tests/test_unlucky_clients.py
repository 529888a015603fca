"""Slow readers, dead peers and churn: the room keeps serving everyone else."""

import asyncio
import socket
import struct
import time

import psutil
import pytest

from tests.clients import closed_with, join, recv, recv_n
from tests.support import ServerProcess

pytestmark = pytest.mark.anyio


async def wait_for_health(srv: ServerProcess, timeout: float = 10.0, **expected: int) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        health = await asyncio.to_thread(srv.health)
        if all(health[k] == v for k, v in expected.items()) or time.monotonic() > deadline:
            return health
        await asyncio.sleep(0.05)


async def test_a_slow_reader_is_closed_with_1013_and_the_others_get_everything(start_server, room):
    # Big frames: the kernel's socket buffers (megabytes) must fill before the queue does.
    queue, n, size, window = 20, 150, 60_000, 5
    srv = start_server(
        {"CHAT_RATE_LIMIT": "0", "CHAT_SEND_QUEUE": str(queue), "CHAT_MAX_MESSAGE_BYTES": "65536"}
    )
    async with join(srv.ws(room)) as slow:
        slow.transport.pause_reading()  # stops reading; the kernel buffers fill, then its queue
        others = [await join(srv.ws(room)).__aenter__() for _ in range(19)]
        try:
            sender = others[0]
            counts = [0] * len(others)
            received: list[list[str]] = [[] for _ in others]
            peak = 0

            async def read_all(k: int) -> None:
                while counts[k] < n:
                    received[k].append(await recv(others[k], timeout=20))
                    counts[k] += 1

            async def watch_queues() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, (await asyncio.to_thread(srv.health))["queued_frames"])
                    await asyncio.sleep(0.05)

            watcher = asyncio.create_task(watch_queues())
            readers = [asyncio.create_task(read_all(k)) for k in range(len(others))]
            for i in range(n):
                # The readers share this test's one core: keep them within a window of the
                # sender so that only the client that stopped reading falls behind.
                while i - min(counts) > window:
                    await asyncio.sleep(0.001)
                await sender.send(f"{i:05d} " + "x" * size)
            await asyncio.gather(*readers)
            watcher.cancel()

            texts = [f"{i:05d} " + "x" * size for i in range(n)]
            assert received[0] == [f"You wrote: {t}" for t in texts]
            for frames in received[1:]:
                assert frames == [f"A client says: {t}" for t in texts]
            health = await wait_for_health(srv, connections=19)
            assert health["connections"] == 19, "the slow reader was not closed"
            # Bounded: no connection ever held more than its queue, the slow one included.
            assert peak <= 20 * queue
            slow.transport.resume_reading()
            assert await closed_with(slow) == 1013
        finally:
            for ws in others:
                await ws.close()
    assert len(srv.all_messages(room)) == n


def abort_abruptly(ws) -> None:
    """Cut the TCP connection with a reset, no close frame (a crashed or vanished client)."""
    sock = ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()


async def test_a_dead_peer_is_removed_without_touching_the_sender_or_anyone_else(server, room):
    async with join(server.ws(room)) as sender, join(server.ws(room)) as other:
        dead = await join(server.ws(room)).__aenter__()
        await sender.send("before")
        assert await recv(sender) == "You wrote: before"
        assert await recv(other) == "A client says: before"
        abort_abruptly(dead)
        for i in range(50):
            await sender.send(f"after {i}")
        for i in range(50):
            assert await recv(sender) == f"You wrote: after {i}"
            assert await recv(other) == f"A client says: after {i}"
    assert len(server.all_messages(room)) == 51


async def test_a_dead_peer_with_frames_queued_is_removed(start_server, room):
    srv = start_server({"CHAT_RATE_LIMIT": "0"})
    async with join(srv.ws(room)) as sender:
        dead = await join(srv.ws(room)).__aenter__()
        dead.transport.pause_reading()
        for i in range(300):
            await sender.send(f"{i} " + "y" * 2000)
        abort_abruptly(dead)
        await recv_n(sender, 300)
        health = await wait_for_health(srv, connections=1)
        assert health["connections"] == 1


async def test_churn_leaves_no_connection_task_or_queue_behind(start_server, room):
    srv = start_server({"CHAT_RATE_LIMIT": "0"})
    baseline = await wait_for_health(srv)

    async def cycle(i: int) -> None:
        ws = await join(srv.ws(f"{room}-{i % 7}")).__aenter__()
        if i % 3 == 0:
            await ws.send(f"churn {i}")
            await recv(ws)
        if i % 4 == 1:
            abort_abruptly(ws)
        else:
            await ws.close()

    async def worker(start: int) -> None:
        for i in range(start, 1000, 10):
            await cycle(i)

    await asyncio.gather(*(worker(k) for k in range(10)))
    health = await wait_for_health(
        srv, connections=0, rooms=0, queued_writes=0, queued_frames=0, tasks=baseline["tasks"]
    )
    assert (health["connections"], health["rooms"], health["queued_writes"]) == (0, 0, 0)
    assert health["queued_frames"] == 0
    assert health["tasks"] == baseline["tasks"]
    stored = sum(len(srv.all_messages(f"{room}-{k}")) for k in range(7))
    assert stored == len(range(0, 1000, 3))


MiB = 1024 * 1024
BOUND = 1 * MiB  # CHAT_SEND_QUEUE_BYTES for the memory tests
NOISE = 5 * MiB  # what the allocator and the other clients' traffic may add
NO_REPLAY = 2**62  # a `since` beyond every id


class PeakRSS:
    """The server process's resident memory, sampled every 20 ms while in use."""

    def __init__(self, srv: ServerProcess) -> None:
        self._proc = psutil.Process(srv.proc.pid)
        self.peak = 0
        self._task: asyncio.Task | None = None

    def now(self) -> int:
        return self._proc.memory_info().rss

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.now())
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> "PeakRSS":
        self.peak = self.now()
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, self.now())


def memory_server(start_server) -> ServerProcess:
    return start_server(
        {
            "CHAT_RATE_LIMIT": "0",
            "CHAT_SEND_QUEUE_BYTES": str(BOUND),
            "CHAT_MAX_MESSAGE_BYTES": "65536",
        }
    )


async def big_traffic(sender, reader, n: int, tag: str) -> None:
    """`n` messages of 60 KB through the room, the reader keeping up."""
    for i in range(n):
        await sender.send(f"{tag}{i:05d} " + "x" * 60_000)
        await recv(sender, timeout=20)
        await recv(reader, timeout=20)


@pytest.mark.slow
async def test_a_client_that_stops_reading_makes_the_server_hold_at_most_its_byte_bound(
    start_server, room
):
    srv = memory_server(start_server)
    async with join(srv.ws(room)) as sender, join(srv.ws(room)) as reader:
        await big_traffic(sender, reader, 200, "warm-up ")  # the allocator's steady state
        # No replay for it (a replay is held until sent, and not counted): live frames only.
        async with join(srv.ws(room, f"?since={NO_REPLAY}")) as stopped:
            stopped.transport.pause_reading()
            async with PeakRSS(srv) as rss:
                baseline = rss.now()
                await big_traffic(sender, reader, 300, "busy ")
            grown = rss.peak - baseline
            assert grown <= BOUND + NOISE, f"RSS grew by {grown / MiB:.1f} MiB"
            stopped.transport.resume_reading()
            assert await closed_with(stopped) == 1013


@pytest.mark.slow
async def test_a_ping_flood_without_reading_the_pongs_is_closed_with_1008_within_the_bound(
    start_server, room
):
    srv = memory_server(start_server)
    async with join(srv.ws(room)) as sender, join(srv.ws(room)) as reader:
        await big_traffic(sender, reader, 100, "warm-up ")
    async with join(srv.ws(room, f"?since={NO_REPLAY}")) as flooder:
        flooder.transport.pause_reading()
        async with PeakRSS(srv) as rss:
            baseline = rss.now()
            ping = masked_frame(0x9, b"p" * 125)
            for _ in range(100):
                flooder.transport.write(ping * 1000)  # 100,000 pings
                await asyncio.sleep(0.01)
            await asyncio.sleep(2.0)  # the server reads them all (or stops reading)
        grown = rss.peak - baseline
        assert grown <= BOUND + NOISE, f"RSS grew by {grown / MiB:.1f} MiB"
        flooder.transport.resume_reading()
        assert await closed_with(flooder) == 1008
    async with join(srv.ws(room, f"?since={NO_REPLAY}")) as other:  # the server serves on
        await other.send("after the flood")
        assert await recv(other) == "You wrote: after the flood"


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """One client-to-server frame (FIN set, masked as the protocol requires)."""
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


async def test_a_replay_larger_than_the_byte_bound_never_makes_a_joiner_too_slow(
    start_server, room
):
    srv = memory_server(start_server)
    async with join(srv.ws(room)) as sender:
        for i in range(50):  # 3 MB of history, three times the bound
            await sender.send(f"{i:05d} " + "x" * 60_000)
            await recv(sender, timeout=20)
    async with join(srv.ws(room)) as joiner:
        joiner.transport.pause_reading()
        await asyncio.sleep(1.0)  # the replay waits on the socket, not in a queue
        joiner.transport.resume_reading()
        replay = [await recv(joiner, timeout=20) for _ in range(50)]
        assert [frame[15:20] for frame in replay] == [f"{i:05d}" for i in range(50)]
        await joiner.send("still here")
        assert await recv(joiner) == "You wrote: still here"
