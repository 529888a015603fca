"""Server-to-client frames, built as ready-to-send ASGI messages.

The plain protocol is the tutorial's ("You wrote: X" / "A client says: X"); the `chat.v1.json`
subprotocol sends JSON objects instead. A broadcast builds each variant at most once and every
connection of the room shares it.
"""

from typing import Any

import orjson

from app.messages import StoredMessage, iso_utc

JSON_SUBPROTOCOL = "chat.v1.json"

Frame = dict[str, Any]  # an ASGI "websocket.send" message


def _frame(text: str) -> Frame:
    return {"type": "websocket.send", "text": text}


def _json(message: StoredMessage, *, history: bool, own: bool) -> Frame:
    body = {
        "type": "message",
        "id": message.id,
        "room_id": message.room_id,
        "text": message.text,
        "created_at": iso_utc(message.created_at),
        "author": message.author,
        "history": history,
        "own": own,
    }
    return _frame(orjson.dumps(body).decode())


HISTORY_END: Frame = _frame(orjson.dumps({"type": "history_end"}).decode())


def history_frame(message: StoredMessage, *, json: bool, own: bool = False) -> Frame:
    """A replayed message; `own` when the joiner is its author (same token `sub`)."""
    if json:
        return _json(message, history=True, own=own)
    return _frame(f"A client says: {message.text}")


class BroadcastFrames:
    """The frames of one live message, each encoded on first use."""

    __slots__ = (
        "_json_other",
        "_json_own",
        "_json_same_user",
        "_text_other",
        "_text_own",
        "message",
    )

    def __init__(self, message: StoredMessage) -> None:
        self.message = message
        self._text_other: Frame | None = None
        self._text_own: Frame | None = None
        self._json_other: Frame | None = None
        self._json_own: Frame | None = None
        self._json_same_user: Frame | None = None

    def for_same_user(self) -> Frame:
        """For a JSON client of the sender's user (same `sub`) other than the sender: `own`,
        but not the sender's copy (no client key)."""
        if self._json_same_user is None:
            self._json_same_user = _json(self.message, history=False, own=True)
        return self._json_same_user

    def for_client(self, *, json: bool, own: bool) -> Frame:
        if json:
            if own:
                if self._json_own is None:
                    self._json_own = _json(self.message, history=False, own=True)
                return self._json_own
            if self._json_other is None:
                self._json_other = _json(self.message, history=False, own=False)
            return self._json_other
        if own:
            if self._text_own is None:
                self._text_own = _frame(f"You wrote: {self.message.text}")
            return self._text_own
        if self._text_other is None:
            self._text_other = _frame(f"A client says: {self.message.text}")
        return self._text_other
