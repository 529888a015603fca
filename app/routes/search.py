"""`GET /search`: the messages that match a query, newest first."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app import auth
from app.chat import ChatDep
from app.models import ROOM_ID_MAX
from app.rooms import ROOM_ID_PATTERN
from app.routes.access import CallerDep, check_room
from app.routes.api import UNAVAILABLE, _json, _message, _read
from app.routes.params import Cursor, WholeNumber
from app.schemas import MessageOut
from app.search import Q_MAX, parse
from app.store_search import find

router = APIRouter()

SearchText = Annotated[
    str,
    Query(
        min_length=1,
        max_length=Q_MAX,
        description='Words (any script), `word*` prefixes, "quoted phrases"; '
        "every other character separates words",
        examples=['deplo* "foo.png"'],
    ),
]
RoomFilter = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=ROOM_ID_MAX,
        pattern=ROOM_ID_PATTERN,
        description="Only this room (default: every room the caller may read)",
    ),
]
SearchLimit = Annotated[
    int, Query(ge=1, le=100, description="How many messages (1 to 100)"), WholeNumber
]


@router.get("/search", response_model=list[MessageOut], responses=UNAVAILABLE, tags=["history"])
async def search(
    q: SearchText,
    chat: ChatDep,
    caller: CallerDep,
    room_id: RoomFilter = None,
    limit: SearchLimit = 20,
    before: Cursor = None,
) -> Response:
    """Messages holding every word of `q` (without case or accents), newest first, in `room_id`
    or else in every room the caller may read; `before` pages on. A `q` without words gives []."""
    if room_id is not None:
        check_room(caller, room_id, chat.settings.access)  # 401/403 like the room's listing
        rooms = auth.RoomSet(exact=frozenset({room_id}))
    else:
        rooms = auth.readable_rooms(caller, chat.settings.access)
    terms = parse(q)
    found = await _read(find(chat.store, terms, rooms=rooms, limit=limit, before=before))
    return _json([_message(m) for m in found])
