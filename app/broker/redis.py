"""Fan-out through Redis pub/sub: every process serving a room receives its committed messages.

Each committed message is PUBLISHed, with its id and its sender's token, to its room's channel
(`{prefix}:room:{room_id}`); each process holds one subscriber connection, SUBSCRIBEd to the
rooms it has clients in, and hands what arrives to its hub. A process's own messages come back
through Redis too, so all processes see one stream per room.

Promises, and how they are kept:
- durable before visible: only committed messages are published (the writer hands them over
  after the commit).
- one order per room across processes: a room's ids commit in id order (PostgreSQL: a
  per-room advisory lock, held by the writer until the batch was published, see
  app/writer.py), so a room's PUBLISHes normally run in id order too. Normally: a PUBLISH
  that timed out may still run later, after the next message's. So each message carries its
  room's previous id, and the receiving side (`app.broker.sequence`) delivers a room in id
  order whatever the order of arrival: duplicates are dropped, and a message that follows a
  hole waits until the missing ones were read from the database, or, if they cannot be, the
  room's local clients are closed with 1012. No process ever delivers N+1 before N.
- no gap at join: `subscribe` returns only after Redis confirmed the SUBSCRIBE (confirmations
  are matched to commands one for one), so a message committed after it returns is delivered,
  and the joiner's history snapshot, read afterwards, covers the ones before.
- publishing never depends on the subscriber link: a process whose subscriber is down (it
  cannot tell what it misses: its clients are closed with 1012) still publishes, so the
  other processes' clients miss nothing.
- Redis down or restarted: committed messages stay stored; a failed publish is logged (once
  per outage) and never fails the writer, and this process's clients are closed with 1012 at
  once (they may have missed it; the other processes fill the hole when the next message of
  the room arrives). When the subscriber link breaks, `lost(None)` is called once (the hub
  closes its clients with 1012, they resume with `?since=`). The subscriber reconnects with
  backoff and resubscribes every room; clients that joined while the link was down may have
  missed messages, so `lost(None)` is called again when it is restored if there are any.
"""

import asyncio
import logging
import os
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from app.broker.base import Deliver, Fill, Lost
from app.broker.sequence import Sequencer
from app.messages import Deletion, Event, StoredMessage, iso_utc

log = logging.getLogger(__name__)

# How long a blocked Redis call may hold up the writer (it runs while the room is locked).
IO_TIMEOUT = 2.0
# The subscriber reads in slices of this long; after HEALTH_SLICES idle slices it PINGs, and a
# PING unanswered for as long again means the link is dead (a peer gone without a FIN).
READ_SLICE = 1.0
HEALTH_SLICES = 5
BACKOFF_MIN, BACKOFF_MAX = 0.1, 2.0
START_WAIT = 3.0
# After a failed publish, the next batches are not tried for this long (Redis is not answering).
PUBLISH_RETRY = 1.0
LINK_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


class LinkBroken(Exception):
    pass


class RedisBroker:
    """Publishes committed messages to Redis and delivers what its subscriptions receive."""

    chained = True  # each message carries its room's previous id

    def __init__(self, url: str, *, channel_prefix: str = "chat") -> None:
        self._url = url
        self._prefix = channel_prefix
        self._deliver: Deliver | None = None
        self._lost: Lost | None = None
        self._client: Redis | None = None
        self._subscriber: Redis | None = None
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._rooms: dict[str, int] = {}  # room -> subscribe calls not yet unsubscribed
        self._ready: dict[str, asyncio.Future[None]] = {}  # room -> its latest SUBSCRIBE's ack
        self._acks: dict[bytes, deque[asyncio.Future[None]]] = {}  # in the order sent
        self._sequence: Sequencer | None = None
        self._up = asyncio.Event()
        self._broken = False  # set by a failed publish: the subscriber resets the link
        self._ever_up = False
        self._joined_while_down = False
        self._publish_failing = False
        self._failed_at = 0.0

    @property
    def link_up(self) -> bool:
        """Whether the subscriber's link to Redis is up (for the metrics)."""
        return self._up.is_set()

    def channel(self, room_id: str) -> str:
        return f"{self._prefix}:room:{room_id}"

    async def start(self, deliver: Deliver, lost: Lost, fill: Fill) -> None:
        """Connect and subscribe; waits briefly for the link but serves without it."""
        self._deliver, self._lost = deliver, lost
        self._sequence = Sequencer(deliver, lost, fill)
        self._client = Redis.from_url(
            self._url,
            socket_timeout=IO_TIMEOUT,
            socket_connect_timeout=IO_TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # `publish` decides about retrying
        )
        # No retry: a silent reconnect of the subscriber would hide the messages it missed.
        self._subscriber = Redis.from_url(
            self._url,
            socket_timeout=IO_TIMEOUT,
            socket_connect_timeout=IO_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
            client_name=f"{self._prefix}:subscriber:{os.getpid()}",  # to spot it in CLIENT LIST
        )
        self._task = asyncio.create_task(self._supervise(), name="redis-subscriber")
        try:
            await asyncio.wait_for(self._up.wait(), START_WAIT)
        except TimeoutError:
            log.warning(
                "Redis at %s does not answer yet: serving, fan-out starts when it does",
                self._safe_url(),
            )

    async def publish(self, events: Sequence[Event], previous: Mapping[str, int]) -> None:
        """PUBLISH in order, one round trip, each with its room's previous id; failures are
        logged once, never raised. Whether the subscriber link is up does not matter."""
        if not events or self._client is None:
            return
        loop = asyncio.get_running_loop()
        if self._publish_failing and loop.time() - self._failed_at < PUBLISH_RETRY:
            # Redis failed us a moment ago: do not hold the rooms' locks for another timeout.
            self._lost_own()
            return
        payloads = _chained(events, previous)
        try:
            try:
                await self._publish_all(self._client, payloads)
            except RedisConnectionError:
                # A pooled connection may have died with a restarted Redis: one fresh try (a
                # message published twice is dropped by the receivers as a duplicate).
                await self._publish_all(self._client, payloads)
        except LINK_ERRORS as exc:
            self._publish_failed(_one_line(exc))
            self._failed_at = loop.time()
            self._lost_own()
            return
        self._publish_failing = False

    def _lost_own(self) -> None:
        # Our own clients may miss what was not published: they resume, and the subscriber
        # starts afresh. Other processes fill the hole from the database (see the docstring).
        self._broken = True
        if self._sequence is not None:
            self._sequence.reset()
        if self._lost is not None:
            self._lost(None)

    async def _publish_all(self, client: Redis, payloads: list[tuple[str, bytes]]) -> None:
        async with client.pipeline(transaction=False) as pipe:
            for room_id, payload in payloads:
                pipe.publish(self.channel(room_id), payload)
            await pipe.execute()

    async def subscribe(self, room_id: str) -> None:
        count = self._rooms.get(room_id, 0)
        self._rooms[room_id] = count + 1
        if count == 0:
            if self._sequence is not None:
                self._sequence.reset(room_id)
            await self._send_subscribe([room_id])
        ready = self._ready.get(room_id)
        if ready is None:
            self._joined_while_down = True
            return
        if not ready.done():
            try:
                await asyncio.wait_for(asyncio.shield(ready), IO_TIMEOUT * 2)
            except TimeoutError:
                # The subscriber's health check will find the dead link and call lost().
                log.warning("Redis did not confirm the subscription to room %r in time", room_id)

    async def unsubscribe(self, room_id: str) -> None:
        count = self._rooms.get(room_id, 0) - 1
        if count > 0:
            self._rooms[room_id] = count
            return
        self._rooms.pop(room_id, None)
        self._ready.pop(room_id, None)
        if self._sequence is not None:
            self._sequence.reset(room_id)
        pubsub = self._pubsub
        if pubsub is not None and self._up.is_set():
            try:
                await pubsub.unsubscribe(self.channel(room_id))
            except LINK_ERRORS:
                self._broken = True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._drop_link()
        if self._sequence is not None:
            await self._sequence.close()
        for client in (self._client, self._subscriber):
            if client is not None:
                await client.aclose()
        self._client = self._subscriber = None
        self._deliver = self._lost = None

    # The subscriber side: one link at a time, rebuilt with backoff when it breaks.

    async def _supervise(self) -> None:
        delay = BACKOFF_MIN
        while True:
            try:
                await self._connect()
                delay = BACKOFF_MIN
                await self._read()
            except (*LINK_ERRORS, LinkBroken) as exc:
                await self._link_down(_one_line(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _connect(self) -> None:
        assert self._subscriber is not None
        self._pubsub = self._subscriber.pubsub()
        # The process's own channel keeps the connection subscribed (and its first ack proves
        # the link) even when it serves no room yet.
        own = f"{self._prefix}:process:{os.getpid()}-{id(self):x}"
        await self._pubsub.subscribe(own)
        self._broken = False
        self._up.set()
        await self._send_subscribe(list(self._rooms))
        if self._ever_up:
            log.warning(
                "Redis link restored (%s): fan-out between processes resumed, %d room(s) "
                "resubscribed",
                self._safe_url(),
                len(self._rooms),
            )
        else:
            log.info(
                "fan-out through Redis at %s, channels %s:room:*", self._safe_url(), self._prefix
            )
        self._ever_up = True
        self._publish_failing = False
        if self._joined_while_down and self._lost is not None:
            # They read their history while nothing was delivered: they resume with ?since=.
            self._lost(None)
        self._joined_while_down = False

    async def _send_subscribe(self, rooms: list[str]) -> None:
        pubsub = self._pubsub
        if not rooms or pubsub is None or not self._up.is_set():
            return
        channels = [self.channel(room) for room in rooms]
        loop = asyncio.get_running_loop()
        for room, channel in zip(rooms, channels, strict=True):
            ack: asyncio.Future[None] = loop.create_future()
            self._acks.setdefault(channel.encode(), deque()).append(ack)
            self._ready[room] = ack
        try:
            await pubsub.subscribe(*channels)
        except LINK_ERRORS:
            self._broken = True

    async def _read(self) -> None:
        pubsub = self._pubsub
        assert pubsub is not None
        idle = 0
        while not self._broken:
            message = await pubsub.get_message(timeout=READ_SLICE)
            if message is not None:
                idle = 0
                self._handle(message)
                continue
            idle += 1
            if idle == HEALTH_SLICES:
                await pubsub.ping()
            elif idle >= 2 * HEALTH_SLICES:
                raise LinkBroken("no answer to PING")
        raise LinkBroken("a command to Redis failed")

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "message":
            self._receive(message["data"])
        elif kind == "subscribe":
            acks = self._acks.get(message["channel"])
            if acks:
                ack = acks.popleft()
                if not ack.done():
                    ack.set_result(None)
                if not acks:
                    del self._acks[message["channel"]]

    def _receive(self, data: bytes) -> None:
        try:
            message, prev = _decode(data)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed message on a Redis room channel")
            return
        if message.room_id not in self._rooms or self._sequence is None:
            return
        self._sequence.receive(message, prev)

    async def _link_down(self, reason: str) -> None:
        was_up = self._up.is_set()
        self._up.clear()
        await self._drop_link()
        if not was_up:
            return
        log.warning(
            "Redis link lost (%s): live fan-out stopped, closing local clients with 1012;"
            " messages are still stored; reconnecting",
            reason,
        )
        if self._lost is not None:
            self._lost(None)

    async def _drop_link(self) -> None:
        self._up.clear()
        # Joiners waiting for an ack go on: the 1012 that follows covers them.
        for acks in self._acks.values():
            for ack in acks:
                if not ack.done():
                    ack.set_result(None)
        self._acks.clear()
        self._ready.clear()
        if self._sequence is not None:
            self._sequence.reset()
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except Exception:  # the link is already gone; nothing to save
                log.debug("closing a broken Redis subscriber connection failed", exc_info=True)

    def _publish_failed(self, reason: str) -> None:
        if self._publish_failing:
            return
        self._publish_failing = True
        log.warning(
            "publishing to Redis failed (%s): messages are stored but not fanned out "
            "until the link is back",
            reason,
        )

    def _safe_url(self) -> str:
        scheme, _, rest = self._url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"


def _chained(events: Sequence[Event], previous: Mapping[str, int]) -> list[tuple[str, bytes]]:
    """Each event's room and payload, with the id of the room's message before it."""
    last = dict(previous)
    payloads = []
    for event in events:
        payloads.append((event.room_id, _encode(event, last.get(event.room_id, 0))))
        if type(event) is not Deletion:
            last[event.room_id] = event.id
    return payloads


def _encode(message: Event, prev: int) -> bytes:
    if type(message) is Deletion:
        return orjson.dumps(
            {"type": "deleted", "id": message.id, "prev": prev, "room_id": message.room_id}
        )
    return orjson.dumps(
        {
            "id": message.id,
            "prev": prev,
            "room_id": message.room_id,
            "text": message.text,
            "created_at": iso_utc(message.created_at),
            "author": message.author,
            "author_id": message.author_id,
            "sender": message.sender,
            "key": message.key,
        }
    )


def _decode(data: bytes) -> tuple[Event, int]:
    body = orjson.loads(data)
    if body.get("type") == "deleted":
        return Deletion(int(body["id"]), str(body["room_id"])), int(body.get("prev") or 0)
    created_at = datetime.fromisoformat(body["created_at"])
    message = StoredMessage(
        int(body["id"]),
        str(body["room_id"]),
        str(body["text"]),
        created_at,
        author=body.get("author"),
        author_id=body.get("author_id"),
        sender=body.get("sender"),
        key=body.get("key"),
    )
    return message, int(body.get("prev") or 0)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
