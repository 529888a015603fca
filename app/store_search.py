"""The search itself, over the index the database keeps.

The index is created and filled by migration 0004; on PostgreSQL a generated column keeps it in
step by itself. On SQLite it follows the stored messages in batches (app/search_index.py,
migration 0008), and a search first brings it up to date: it finds every message stored before
it. Triggers take deleted messages out.
"""

from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Text,
    bindparam,
    column,
    exists,
    func,
    literal,
    select,
    table,
)

from app.auth import RoomSet
from app.messages import StoredMessage
from app.models import Message, Room
from app.search import Term, fts5_query

if TYPE_CHECKING:
    from app.store import Store

FTS_TABLE = "messages_fts"
_fts = table(FTS_TABLE, column("rowid"))
_fts_match = column(FTS_TABLE).op("MATCH")
_search_vector = column("search_vector")  # PostgreSQL's generated column, not in the model

# A room this small is searched by checking each of its messages against the index (about
# 40 µs each, newest first); a larger one by walking the index's matches newest first and
# keeping the room's, which for a room of few old messages would walk most of the index.
SMALL_ROOM = 500

_COLUMNS = (
    Message.id,
    Message.room_id,
    Message.text,
    Message.created_at,
    Message.author,
    Message.author_id,
)


async def find(
    store: "Store",
    terms: list[Term],
    *,
    rooms: RoomSet,
    limit: int,
    before: int | None = None,
) -> list[StoredMessage]:
    """Messages holding every term, newest first, with ids below `before`.

    Only in `rooms` (app/auth.py's answer to "which rooms may this caller read").
    """
    if not terms:
        return []
    await store.search_index_current()
    if store.engine.dialect.name == "postgresql":
        query = select(*_COLUMNS).where(_search_vector.op("@@")(_tsquery(terms)))
        order, id_column = Message.id.desc(), Message.id
    elif await _small_room(store, rooms):
        match = _fts_match(bindparam("match", fts5_query(terms), type_=Text))
        query = select(*_COLUMNS).where(
            exists(select(literal(1)).select_from(_fts).where(match, _fts.c.rowid == Message.id))
        )
        order, id_column = Message.id.desc(), Message.id
    else:
        query = (
            select(*_COLUMNS)
            .select_from(_fts.join(Message.__table__, Message.id == _fts.c.rowid))
            .where(_fts_match(bindparam("match", fts5_query(terms), type_=Text)))
        )
        # FTS5 hands rowids out in this order itself: no sort, and the LIMIT stops its scan.
        order, id_column = _fts.c.rowid.desc(), _fts.c.rowid
    if not rooms.every:
        query = query.where(_in_room_set(Message.room_id, rooms))
    if before is not None:
        query = query.where(id_column < before)
    return await store.fetch(query.order_by(order), limit)


async def _small_room(store: "Store", rooms: RoomSet) -> bool:
    if rooms.every or rooms.prefixes or len(rooms.exact) != 1:
        return False
    [room_id] = rooms.exact
    async with store.engine.connect() as conn:
        size = await conn.scalar(select(Room.messages).where(Room.room_id == room_id))
    return (size or 0) <= SMALL_ROOM


def _tsquery(terms: list[Term]) -> ColumnElement[object]:
    """Every term ANDed; a phrase's words joined by `<->`; each word folded by the database."""
    combined: ColumnElement[object] | None = None
    for term in terms:
        phrase: ColumnElement[object] | None = None
        for word in term.words:
            one = func.chat_search_term(bindparam(None, word.text, type_=Text), word.prefix)
            phrase = one if phrase is None else func.tsquery_phrase(phrase, one)
        assert phrase is not None
        combined = phrase if combined is None else combined.op("&&")(phrase)
    assert combined is not None
    return combined


def _in_room_set(column: Any, rooms: RoomSet) -> ColumnElement[bool]:
    # The listing's own test of a RoomSet (case-sensitive, no LIKE), imported here late:
    # store.py imports this module for the writer's index statement.
    from app.store import _in_room_set as in_room_set

    return in_room_set(column, rooms)
