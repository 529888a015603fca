"""The export file: NDJSON, one message a line, in the REST API's shape.

`{"id": 17, "room_id": "general", "text": "hi", "created_at": "2026-11-24T21:40:00.123456Z",
"author": null}`: the keys and their order of `GET /rooms/{room_id}/messages` (app/routes/api.py),
`created_at` as app/messages.py `iso_utc` writes it. `parse_line` is the one judge of what an
import accepts: a message the server could have stored.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple

import orjson

from app.models import AUTHOR_MAX
from app.rooms import is_valid_room_id

ID_MAX = 2**63 - 1

# (id, room_id, text, created_at in iso_utc's form, author): what the store reads for export.
ExportRow = tuple[int, str, str, str, str | None]


class ImportedMessage(NamedTuple):
    """A valid line of an import, `created_at` timezone-aware UTC. (A named tuple: a frozen
    dataclass's __init__ cost more than the rest of a line's checks.)"""

    line: int
    id: int
    room_id: str
    text: str
    created_at: datetime
    author: str | None
    # created_at in iso_utc's form ("2026-11-24T21:40:00.123456Z"), which storage may use.
    stamp: str

    def content(self) -> tuple[str, str, datetime, str | None]:
        """What must match for a stored row of the same id to be this message."""
        return (self.room_id, self.text, self.created_at, self.author)


class BadLine(ValueError):
    """A line that is not a message; its text is the reason given to the operator."""


def encode(rows: Iterable[ExportRow]) -> bytes:
    """The NDJSON lines of `rows`, each ending in a newline."""
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    return b"".join(
        [
            dumps(
                {"id": i, "room_id": room, "text": body, "created_at": at, "author": author},
                option=newline,
            )
            for i, room, body, at, author in rows
        ]
    )


def parse_line(number: int, line: bytes, max_text_bytes: int) -> ImportedMessage:
    """The message on line `number`; BadLine says why it is not one.

    Accepted: a JSON object with an integer `id` from 1 to 2^63-1, a valid `room_id`
    (app/rooms.py), a `text` that is not empty or only whitespace, holds no U+0000 and fits
    in `max_text_bytes` UTF-8 bytes, a `created_at` in ISO 8601 with a time zone, and an
    `author` that is null or 1 to 64 characters without U+0000. Other keys are ignored.
    (One function, not one a field: it runs for every line of a million-line import.)
    """
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise BadLine("not JSON") from None
    if type(value) is not dict:
        raise BadLine("not a JSON object")
    try:
        i, room, body = value["id"], value["room_id"], value["text"]
        at, author = value["created_at"], value["author"]
    except KeyError as exc:
        raise BadLine(f"no {exc.args[0]!r}") from None
    # bool is an int in Python, never in JSON's sense: hence `type(...) is`.
    if type(i) is not int or not 1 <= i <= ID_MAX:
        raise BadLine("'id' is not an integer from 1 to 2^63-1")
    if type(room) is not str or not is_valid_room_id(room):
        raise BadLine("'room_id' is not a room id")
    if type(body) is not str:
        raise BadLine("'text' is not a string")
    if not body or body.isspace():
        raise BadLine("'text' is empty")
    if "\x00" in body:
        raise BadLine("'text' holds U+0000")
    if len(body) * 4 > max_text_bytes and len(body.encode()) > max_text_bytes:
        raise BadLine(f"'text' is over {max_text_bytes} bytes (CHAT_MAX_MESSAGE_BYTES)")
    if author is not None and (
        type(author) is not str or not 1 <= len(author) <= AUTHOR_MAX or "\x00" in author
    ):
        raise BadLine(f"'author' is not null or 1 to {AUTHOR_MAX} characters")
    moment = _created_at(at)
    # An export's own times are kept as they are; any other form is written out again.
    stamp = at if _is_stamp(at) else moment.isoformat(timespec="microseconds")[:26] + "Z"
    return ImportedMessage(number, i, room, body, moment, author, stamp)


def _is_stamp(at: str) -> bool:
    """Whether `at`, a valid ISO 8601 time, is in iso_utc's form "YYYY-MM-DDTHH:MM:SS.ffffffZ"
    (no other form that fromisoformat reads has these 27 characters in these places)."""
    return len(at) == 27 and at[26] == "Z" and at[4:20:3] == "--T::."  # at 4, 7, 10, ... 19


def _created_at(found: object) -> datetime:
    try:
        moment = datetime.fromisoformat(found) if type(found) is str else None
        if moment is not None and moment.tzinfo is UTC:
            return moment
        if moment is not None and moment.tzinfo is not None:
            return moment.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 moved back past the calendar
        pass
    raise BadLine("'created_at' is not an ISO 8601 time with a time zone")
