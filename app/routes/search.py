"""`GET /search`: the messages that match a query, newest first."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.chat import ChatDep
from app.models import ROOM_ID_MAX
from app.rooms import ROOM_ID_PATTERN
from app.routes.api import UNAVAILABLE, _json, _message, _read
from app.routes.params import Cursor
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
SearchLimit = Annotated[int, Query(ge=1, le=100, description="How many messages (1 to 100)")]


def readable_rooms(room_id: str | None) -> list[str] | None:
    """The room patterns a search covers: `room_id`, else every room the caller may read.

    None is every room. Until identity and access (issue 10) land, every room is readable;
    then this is the one place that asks which rooms the caller may read.
    """
    return None if room_id is None else [room_id]


@router.get("/search", response_model=list[MessageOut], responses=UNAVAILABLE, tags=["history"])
async def search(
    q: SearchText,
    chat: ChatDep,
    room_id: RoomFilter = None,
    limit: SearchLimit = 20,
    before: Cursor = None,
) -> Response:
    """Messages holding every word of `q` (without case or accents), newest first; `before`
    pages on. A `q` without words gives []."""
    terms = parse(q)
    rooms = readable_rooms(room_id)
    found = await _read(find(chat.store, terms, rooms=rooms, limit=limit, before=before))
    return _json([_message(m) for m in found])
