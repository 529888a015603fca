"""The REST API over the stored history."""

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

import orjson
from fastapi import APIRouter, HTTPException, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app import auth
from app.auth import readable_rooms
from app.chat import Chat, ChatDep
from app.messages import StoredMessage, iso_utc
from app.routes.access import CallerDep, check_room, refusal
from app.routes.params import Cursor, Limit, MessageId, RoomId
from app.schemas import ErrorDetail, Health, MessageOut, RoomOut
from app.writer import RoomBusy

log = logging.getLogger(__name__)

router = APIRouter()

JSON = "application/json"
T = TypeVar("T")


def _json(body: object) -> Response:
    # Built by hand rather than validated again by FastAPI: the shape is the response_model's.
    return Response(orjson.dumps(body), media_type=JSON)


def _message(m: StoredMessage) -> dict[str, object]:
    return {
        "id": m.id,
        "room_id": m.room_id,
        "text": m.text,
        "created_at": iso_utc(m.created_at),
        "author": m.author,
    }


UNAVAILABLE = {503: {"model": ErrorDetail, "description": "The database does not answer"}}
# A room id holding an encoded "/" (%2F) splits the path, which then matches no route.
NOT_FOUND = {404: {"model": ErrorDetail, "description": "The path matches no route"}}


async def _read(query: Awaitable[T]) -> T:
    """A read the database cannot answer is a documented 503, never a bare 500."""
    try:
        return await query
    except (SQLAlchemyError, OSError) as exc:
        log.warning("REST read failed, answering 503: %r", exc)
        raise HTTPException(503, "the database does not answer") from exc


@router.get(
    "/rooms/{room_id}/messages",
    response_model=list[MessageOut],
    responses=NOT_FOUND | UNAVAILABLE,
    tags=["history"],
)
async def list_messages(
    room_id: RoomId,
    chat: ChatDep,
    caller: CallerDep,
    limit: Limit = 50,
    before: Cursor = None,
    after: Cursor = None,
    around: Cursor = None,
) -> Response:
    """A room's stored messages, oldest first: the newest `limit` (below `before`), or with
    `after` the oldest `limit` above it, or with `around` the newest `limit`/2 below it and
    the oldest from it on (a search hit in its context). An unknown room gives []."""
    if around is not None and (before is not None or after is not None):
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", "around"),
                    "msg": "around cannot be combined with before or after",
                    "input": around,
                }
            ]
        )
    check_room(caller, room_id, chat.settings.access)
    if around is not None:
        return _json([_message(m) for m in await _read(_around(chat, room_id, around, limit))])
    messages = await _read(chat.store.page(room_id, limit=limit, before=before, after=after))
    return _json([_message(m) for m in messages])


async def _around(chat: Chat, room_id: str, around: int, limit: int) -> list[StoredMessage]:
    earlier = await chat.store.page(room_id, limit=limit // 2, before=around) if limit > 1 else []
    later = await chat.store.page(room_id, limit=limit - len(earlier), after=around - 1)
    return earlier + later


@router.delete(
    "/rooms/{room_id}/messages/{message_id}",
    status_code=204,
    response_class=Response,
    responses={
        403: {
            "model": ErrorDetail,
            "description": "Not the caller's message and not an admin, or no tokens on this"
            " server (deleting needs CHAT_AUTH_SECRET)",
        },
        404: {"model": ErrorDetail, "description": "No message with this id in this room"},
    }
    | UNAVAILABLE,
    tags=["history"],
)
async def delete_message(
    room_id: RoomId, message_id: MessageId, chat: ChatDep, caller: CallerDep
) -> Response:
    """Delete a message for good (its author, or an admin): it leaves the database, the search
    index and the room's count, and every `chat.v2.json` client of the room is told."""
    access = chat.settings.access
    try:
        auth.check_deleter(caller, access)
        auth.check_room(caller, room_id, access)
        message = await _read(chat.store.message(room_id, message_id))
        if message is None:
            raise HTTPException(404, "no such message in this room")
        auth.check_delete(caller, message.author_id, access)
    except auth.Refused as refused:
        raise refusal(refused) from None
    try:
        deleted = await chat.writer.delete(room_id, message_id)
    except (RoomBusy, SQLAlchemyError, OSError) as exc:
        log.warning(
            "deleting message %d of room %r failed, answering 503: %r", message_id, room_id, exc
        )
        raise HTTPException(503, "the database does not answer") from exc
    if not deleted:
        raise HTTPException(404, "no such message in this room")
    log.info(
        "message %d of room %r deleted by %s",
        message_id,
        room_id,
        "an admin" if caller is not None and caller.admin else "its author",
        extra={"room": room_id, "message_id": message_id},
    )
    return Response(status_code=204)


@router.get("/rooms", response_model=list[RoomOut], responses=UNAVAILABLE, tags=["history"])
async def list_rooms(
    chat: ChatDep,
    caller: CallerDep,
    limit: Limit = 50,
) -> Response:
    """Rooms that have messages and that the caller may read, most recently active first."""
    readable = readable_rooms(caller, chat.settings.access)
    rooms = await _read(chat.store.rooms(limit=limit, readable=readable))
    return _json(
        [
            {
                "room_id": r.room_id,
                "messages": r.messages,
                "last_message_at": iso_utc(r.last_message_at),
            }
            for r in rooms
        ]
    )


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database does not answer"}},
    tags=["operations"],
)
async def healthz(chat: ChatDep) -> JSONResponse:
    """Whether the database answers, and this process's live counts."""
    status = "ok"
    try:
        await asyncio.wait_for(chat.store.ping(), timeout=2.0)
    except Exception as exc:
        log.warning("health check: the database does not answer: %s", exc)
        status = "unavailable"
    body = Health(
        status=status,
        connections=chat.hub.connections,
        rooms=chat.hub.rooms,
        queued_writes=chat.writer.queued,
        queued_frames=chat.hub.queued_frames,
        tasks=len(asyncio.all_tasks()),
    )
    return JSONResponse(body.model_dump(), status_code=200 if status == "ok" else 503)
