"""The room socket: the tutorial's flow, on top of the writer, the hub and the broker.

socket -> writer (group commit) -> broker -> hub -> each connection's bounded queue.
"""

import asyncio
import logging
import time

from fastapi import APIRouter, WebSocket

from app import auth, metrics
from app.chat import Chat, get_chat
from app.client_frames import BadFrame, parse_send
from app.connection import SEND_MANY, SEND_NOW, Connection
from app.frames import JSON_SUBPROTOCOL, V2_SUBPROTOCOL, history_end_frame, history_frame
from app.origin import origin_allowed
from app.ratelimit import TokenBucket
from app.rooms import is_valid_room_id
from app.routes.params import MAX_ID

log = logging.getLogger(__name__)

router = APIRouter()

UNSUPPORTED_DATA = 1003
POLICY_VIOLATION = 1008
INVALID_DATA = 1007
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
# Closes that uvicorn's protocol makes on its own: a frame over the size limit, bad UTF-8.
PROTOCOL_CLOSES = (1007, MESSAGE_TOO_BIG)


async def room_socket(websocket: WebSocket) -> None:
    """`ws://HOST:PORT/{room_id}[?since=ID][&name=NAME][&access_token=TOKEN]`.

    A plain Starlette route rather than FastAPI's: no dependency solving and no exit stacks
    kept for the socket's whole life (kilobytes on every idle connection). The parameters are
    checked here as FastAPI would: a bad one refuses the handshake.
    """
    room_id: str = websocket.path_params["room_id"]
    chat = get_chat(websocket)
    query = websocket.query_params
    token = auth.bearer_token(websocket.headers.get("authorization")) or (
        query.get("access_token") or None
    )
    try:
        since = _since(query.getlist("since"))
        if not is_valid_room_id(room_id):
            raise ValueError(room_id)
        # With a token, the token names the client and `?name=` is ignored.
        name = (
            None
            if token and chat.settings.access.tokens
            else auth.open_chat_name(query.get("name"))
        )
    except ValueError:
        log.info("refused a WebSocket: invalid room id, since or name in %r", websocket.url.path)
        await websocket.close(POLICY_VIOLATION)
        return
    await _serve(websocket, room_id, chat, since, token, name)


router.add_websocket_route("/{room_id}", room_socket)


def _since(values: list[str]) -> int | None:
    """The `since` cursor, or None; ValueError unless it is an integer from 0 to 2^63-1."""
    if not values:
        return None
    value = values[-1]
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_ID:
        raise ValueError(value)
    return int(value)


async def _serve(
    websocket: WebSocket,
    room_id: str,
    chat: Chat,
    since: int | None,
    token: str | None,
    name: str | None,
) -> None:
    if chat.hub.closing:
        await websocket.close(1001)  # before accept: the handshake is refused
        return
    if not origin_allowed(
        websocket.headers,
        chat.settings.origins,
        server=websocket.scope.get("server"),
        scheme=websocket.scope.get("scheme", "ws"),
    ):
        log.warning(
            "refused a WebSocket to room %r from Origin %r: not allowed by CHAT_ALLOWED_ORIGINS"
            " (unset: this server's own pages only; behind a proxy, set it to the public origin)",
            room_id,
            websocket.headers.get("origin"),
            extra={"room": room_id, "origin": websocket.headers.get("origin")},
        )
        await websocket.close(POLICY_VIOLATION)
        return
    send_many = (websocket.scope.get("extensions") or {}).get(SEND_MANY)
    if send_many is not None:
        # app.protocol's bound on the replies to a client's control frames (pongs).
        send_many["max_buffered"] = chat.settings.send_queue_bytes
    protocol = _subprotocol(websocket.scope.get("subprotocols", ()))
    json = protocol is not None
    await websocket.accept(subprotocol=protocol)
    try:
        identity = auth.caller(token, chat.settings.access)
        auth.check_room(identity, room_id, chat.settings.access)
    except auth.Refused as refused:
        log.info(
            "closing a client of room %r with %d: %s",
            room_id,
            refused.code,
            refused.reason,
            extra={"room": room_id, "code": refused.code},
        )
        metrics.closed(refused.code)
        await websocket.close(refused.code, refused.reason)
        return
    conn = Connection(
        room_id,
        websocket.send,
        websocket.close,
        json=json,
        limit=chat.settings.send_queue,
        max_bytes=chat.settings.send_queue_bytes,
        send_many=send_many is not None,
        send_now=websocket.scope.get("extensions", {}).get(SEND_NOW, {}).get("send_now"),
    )
    conn.v2 = protocol == V2_SUBPROTOCOL
    if identity is not None:
        conn.author, conn.author_id = identity.name, identity.sub
    else:
        conn.author = name
    expiry = _close_at_expiry(conn, identity)
    try:
        await chat.join(conn)
        if await _replay(chat, conn, since, v2=conn.v2):
            await _read(websocket, conn, chat, v2=conn.v2)
    finally:
        if expiry is not None:
            expiry.cancel()
        await chat.leave(conn)


def _close_at_expiry(
    conn: Connection, identity: auth.Identity | None
) -> asyncio.TimerHandle | None:
    """A connection whose token expires is closed with 4401 at that moment."""
    if identity is None or identity.exp is None:
        return None
    refused = auth.NotAuthenticated("token expired")

    def expire() -> None:
        log.info(
            "closing a client of room %r with 4401: token expired",
            conn.room_id,
            extra={"room": conn.room_id, "code": refused.code},
        )
        conn.close(refused.code, refused.reason)

    delay = max(0.0, identity.exp - time.time())
    return asyncio.get_running_loop().call_later(delay, expire)


def _subprotocol(offered: list[str]) -> str | None:
    """`chat.v2.json` if the client offers it, else `chat.v1.json` if offered, else plain text."""
    for protocol in (V2_SUBPROTOCOL, JSON_SUBPROTOCOL):
        if protocol in offered:
            return protocol
    return None


async def _replay(chat: Chat, conn: Connection, since: int | None, *, v2: bool) -> bool:
    began = time.monotonic()
    try:
        snapshot = await chat.store.snapshot(
            conn.room_id, since=since, last=chat.settings.history_replay
        )
    except Exception as exc:
        log.error(
            "closing a joiner of room %r with 1011: history unavailable: %s",
            conn.room_id,
            exc,
            extra={"room": conn.room_id, "code": INTERNAL_ERROR},
        )
        conn.close(INTERNAL_ERROR, "history unavailable")
        await conn.wait_closed()
        return False
    history = [
        history_frame(
            m, json=conn.json, own=conn.author_id is not None and m.author_id == conn.author_id
        )
        for m in snapshot.messages
    ]
    if conn.json:
        history.append(history_end_frame(v2=v2, complete=snapshot.complete))
    conn.start(history, snapshot.cutoff)
    metrics.joined(began, len(snapshot.messages))
    return True


async def _read(websocket: WebSocket, conn: Connection, chat: Chat, *, v2: bool) -> None:
    """Read the client's frames and queue them for the writer, never waiting for a commit."""
    settings = chat.settings
    max_bytes = settings.max_message_bytes
    bucket = (
        TokenBucket(settings.rate_limit, settings.rate_burst) if settings.rate_limited else None
    )
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            if message.get("code") in PROTOCOL_CLOSES and conn.close_code is None:
                metrics.closed(message["code"])  # the protocol closed it, not the app
            if message.get("code") == MESSAGE_TOO_BIG and conn.close_code is None:
                # The protocol itself refused the frame (its size limit follows the setting's).
                log.info(
                    "closed a client of room %r with 1009: message over %d bytes",
                    conn.room_id,
                    max_bytes,
                    extra={"room": conn.room_id, "code": MESSAGE_TOO_BIG},
                )
            return
        if conn.close_code is not None or chat.hub.closing:
            # Closing, or the server is draining: what still arrives is not acknowledged,
            # so not stored (the drain ends in bounded time however fast clients send).
            continue
        text = message.get("text")
        key = None
        if text is None:
            _reject(conn, UNSUPPORTED_DATA, "binary frames are not accepted")
            continue
        if v2:
            try:
                text, key = parse_send(text)
            except BadFrame as exc:
                _reject(conn, INVALID_DATA, f"not a send frame: {exc}")
                continue
        if len(text) > max_bytes or (len(text) * 4 > max_bytes and len(text.encode()) > max_bytes):
            _reject(conn, MESSAGE_TOO_BIG, f"message over {max_bytes} bytes")
        elif not text or text.isspace():
            continue
        elif "\x00" in text:
            # PostgreSQL cannot store it: refused on every database, alike.
            _reject(conn, INVALID_DATA, "text holding U+0000 is not accepted")
        elif bucket is not None and not bucket.take():
            _reject(conn, POLICY_VIOLATION, "rate limit exceeded")
        else:
            await chat.writer.submit(conn.room_id, text, conn, key=key)


def _reject(conn: Connection, code: int, reason: str) -> None:
    log.info(
        "closing a client of room %r with %d: %s",
        conn.room_id,
        code,
        reason,
        extra={"room": conn.room_id, "code": code},
    )
    conn.close(code, reason, flush=True)
