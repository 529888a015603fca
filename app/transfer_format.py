"""The export file: NDJSON, one message a line, in the REST API's shape.

`{"id": 17, "room_id": "general", "text": "hi", "created_at": "2026-11-24T21:40:00.123456Z",
"author": null}`: the keys and their order of `GET /rooms/{room_id}/messages` (app/routes/api.py),
`created_at` as app/messages.py `iso_utc` writes it. `parse_line` is the one judge of what an
import accepts: a message the server could have stored.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from app.models import AUTHOR_MAX
from app.rooms import is_valid_room_id

ID_MAX = 2**63 - 1

# (id, room_id, text, created_at in iso_utc's form, author): what the store reads for export.
ExportRow = tuple[int, str, str, str, str | None]


@dataclass(slots=True, frozen=True)
class ImportedMessage:
    """A valid line of an import, `created_at` timezone-aware UTC."""

    line: int
    id: int
    room_id: str
    text: str
    created_at: datetime
    author: str | None

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
    """
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise BadLine("not JSON") from None
    if not isinstance(value, dict):
        raise BadLine("not a JSON object")
    return ImportedMessage(
        number,
        _id(value),
        _room_id(value),
        _text(value, max_text_bytes),
        _created_at(value),
        _author(value),
    )


def _field(value: dict[str, Any], name: str) -> Any:
    if name not in value:
        raise BadLine(f"no {name!r}")
    return value[name]


def _id(value: dict[str, Any]) -> int:
    found = _field(value, "id")
    # bool is an int in Python, never in JSON's sense.
    if type(found) is not int or not 1 <= found <= ID_MAX:
        raise BadLine("'id' is not an integer from 1 to 2^63-1")
    return found


def _room_id(value: dict[str, Any]) -> str:
    found = _field(value, "room_id")
    if not isinstance(found, str) or not is_valid_room_id(found):
        raise BadLine("'room_id' is not a room id")
    return found


def _text(value: dict[str, Any], max_bytes: int) -> str:
    found = _field(value, "text")
    if not isinstance(found, str):
        raise BadLine("'text' is not a string")
    if not found or found.isspace():
        raise BadLine("'text' is empty")
    if "\x00" in found:
        raise BadLine("'text' holds U+0000")
    if len(found) > max_bytes or (len(found) * 4 > max_bytes and len(found.encode()) > max_bytes):
        raise BadLine(f"'text' is over {max_bytes} bytes (CHAT_MAX_MESSAGE_BYTES)")
    return found


def _created_at(value: dict[str, Any]) -> datetime:
    found = _field(value, "created_at")
    try:
        moment = datetime.fromisoformat(found) if isinstance(found, str) else None
        if moment is not None and moment.tzinfo is not None:
            return moment.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 moved back past the calendar
        pass
    raise BadLine("'created_at' is not an ISO 8601 time with a time zone")


def _author(value: dict[str, Any]) -> str | None:
    found = _field(value, "author")
    if found is None:
        return None
    if not isinstance(found, str) or not 1 <= len(found) <= AUTHOR_MAX or "\x00" in found:
        raise BadLine(f"'author' is not null or 1 to {AUTHOR_MAX} characters")
    return found
