"""What a `chat.v2.json` client may send: `{"type": "send", "text": ..., "key": ...}`.

Anything else is a protocol error (the socket closes it with 1007). Other fields are ignored.
"""

import re

import orjson

KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A `send` frame around the largest text: JSON may write a byte of text as six (`\u0001`), and
# the object's other fields (a key of 64 characters) take a few hundred bytes at most.
_ESCAPED = 6
_FIELDS = 512


def max_frame_bytes(max_text_bytes: int) -> int:
    """The largest text frame the server reads; the limit on `text` itself is checked after."""
    return _ESCAPED * max_text_bytes + _FIELDS


class BadFrame(ValueError):
    """The text frame is not a `send` object; the message says what is wrong with it."""


def parse_send(raw: str) -> tuple[str, str | None]:
    """The `text` and `key` of a `send` frame. A plain tuple, made once a message a
    `chat.v2.json` client sends: a named tuple's `__new__` is a Python function of its own
    (about 1 µs a message in the profile of a busy server, docs/performance.md)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadFrame("not JSON") from None
    if not isinstance(body, dict):
        raise BadFrame("not a JSON object")
    if body.get("type") != "send":
        raise BadFrame("type is not 'send'")
    text = body.get("text")
    if not isinstance(text, str):
        raise BadFrame("text is not a string")
    key = body.get("key")
    if key is not None and not (isinstance(key, str) and KEY.fullmatch(key)):
        raise BadFrame("key is not 1 to 64 characters of A-Z a-z 0-9 _ -")
    return text, key
