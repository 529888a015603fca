"""Server-to-client frames, built as ready-to-send ASGI messages.

The plain protocol is the tutorial's ("You wrote: X" / "A client says: X"); the `chat.v1.json`
subprotocol sends JSON objects instead, and `chat.v2.json` adds to them: the client key on the
sender's own copy, `complete` on `history_end`, and `deleted` frames. A broadcast builds each
variant at most once and every connection of the room shares it.
"""

from datetime import UTC, datetime
from typing import Any

import orjson

from app.messages import StoredMessage, iso_utc

JSON_SUBPROTOCOL = "chat.v1.json"
V2_SUBPROTOCOL = "chat.v2.json"

Frame = dict[str, Any]  # an ASGI "websocket.send" message


def _frame(text: str) -> Frame:
    return {"type": "websocket.send", "text": text}


def _json(message: StoredMessage, *, history: bool, own: bool, key: str | None = None) -> Frame:
    return _json_frame(_json_head(message, history=history), own=own, key=key)


def _json_head(message: StoredMessage, *, history: bool) -> bytes:
    """A message frame's JSON object up to its last fields (`own`, and `key` on the sender's
    copy), without its closing brace: encoded once for all the variants of a broadcast, which
    differ only there (two whole encodings a message were about 5 µs of a busy server's CPU
    with keyed senders over 50 rooms; docs/performance.md, eighth pass)."""
    body: dict[str, Any] = {
        "type": "message",
        "id": message.id,
        "room_id": message.room_id,
        "text": message.text,
        "created_at": _json_time(message.created_at),
        "author": message.author,
        "history": history,
    }
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)[:-1]


_OWN = {True: b',"own":true', False: b',"own":false'}


def _json_frame(head: bytes, *, own: bool, key: str | None) -> Frame:
    if key is None:  # the key only ever on the sending connection's own copy
        return _frame((head + _OWN[own] + b"}").decode())
    return _frame((head + _OWN[own] + b',"key":' + orjson.dumps(key) + b"}").decode())


def _json_time(moment: datetime) -> datetime | str:
    """`created_at` for orjson: a time in UTC with microseconds as it is (orjson writes it as
    `iso_utc` does, "2026-12-01T16:48:42.123456Z", in a third of `iso_utc`'s time: a JSON frame
    took 2.1 µs, now 0.9), anything else as `iso_utc`'s string (orjson would leave out the
    fraction of a whole second, and the format has six digits always)."""
    if moment.tzinfo is UTC and moment.microsecond:
        return moment
    return iso_utc(moment)


HISTORY_END: Frame = _frame(orjson.dumps({"type": "history_end"}).decode())
_HISTORY_END_V2 = {
    complete: _frame(orjson.dumps({"type": "history_end", "complete": complete}).decode())
    for complete in (True, False)
}


def history_end_frame(*, v2: bool, complete: bool) -> Frame:
    """`chat.v2.json` says whether a `?since=` replay was cut by its cap; v1 stays as it was."""
    return _HISTORY_END_V2[complete] if v2 else HISTORY_END


def history_frame(message: StoredMessage, *, json: bool, own: bool = False) -> Frame:
    """A replayed message; `own` when the joiner is its author (same token `sub`)."""
    if json:
        return _json(message, history=True, own=own)
    return _frame(f"A client says: {message.text}")


def own_copy_frame(message: StoredMessage, *, json: bool) -> Frame:
    """The sender's own copy of one message, with its key (a retry's answer)."""
    if json:
        return _json(message, history=False, own=True, key=message.key)
    return _frame(f"You wrote: {message.text}")


def deleted_frame(message_id: int, room_id: str) -> Frame:
    """`chat.v2.json` only: the message is gone from the room."""
    body = {"type": "deleted", "id": message_id, "room_id": room_id}
    return _frame(orjson.dumps(body).decode())


class BroadcastFrames:
    """The frames of one live message, each encoded on first use."""

    __slots__ = (
        "_json_head",
        "_json_other",
        "_json_own",
        "_json_same_user",
        "_text_other",
        "_text_own",
        "message",
    )

    def __init__(self, message: StoredMessage) -> None:
        self.message = message
        self._json_head: bytes | None = None
        self._text_other: Frame | None = None
        self._text_own: Frame | None = None
        self._json_other: Frame | None = None
        self._json_own: Frame | None = None
        self._json_same_user: Frame | None = None

    def for_same_user(self) -> Frame:
        """For a JSON client of the sender's user (same `sub`) other than the sender: `own`,
        but not the sender's copy (no client key)."""
        if self._json_same_user is None:
            self._json_same_user = _json_frame(self._head(), own=True, key=None)
        return self._json_same_user

    def for_sender(self, *, json: bool) -> Frame:
        """The sending connection's copy: `own`, and with the client key if it gave one.

        Only `chat.v2.json` clients send keys, so v1 and plain senders get their usual frame.
        """
        if json:
            if self._json_own is None:
                self._json_own = _json_frame(self._head(), own=True, key=self.message.key)
            return self._json_own
        if self._text_own is None:
            self._text_own = own_copy_frame(self.message, json=False)
        return self._text_own

    def for_client(self, *, json: bool) -> Frame:
        """Everyone else's copy: never a key."""
        if json:
            if self._json_other is None:
                self._json_other = _json_frame(self._head(), own=False, key=None)
            return self._json_other
        if self._text_other is None:
            self._text_other = _frame(f"A client says: {self.message.text}")
        return self._text_other

    def _head(self) -> bytes:
        if self._json_head is None:
            self._json_head = _json_head(self.message, history=False)
        return self._json_head
