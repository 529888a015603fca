"""Property-based round trip: any Unicode text a UTF-8 text frame can carry, up to the byte
limit, comes back exactly as sent through the echo, the room, JSON frames, replay and REST."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from app.settings import Settings
from tests.support import ServerProcess, unique_room

# The limit the session server reads from the same environment.
MAX_BYTES = Settings().max_message_bytes
TIMEOUT = 10.0
JSON = ["chat.v1.json"]

# Characters a naive implementation mangles: controls (SOH, ESC, DEL, C1), line and paragraph
# separators, BOM, bidi overrides and isolates, right-to-left scripts, combining marks, zero
# widths and joiners, a variation selector, U+FFFD (what a browser sends for a lone
# surrogate), noncharacters, astral emoji and symbols, a tag character, plane 16.
TRICKY = (
    "\x01\x07\x08\x0b\x0c\x1b\x7f\x80\x85\x9f\u2028\u2029\ufeff"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"
    "שלוםمرحبا\u0301\u0308\u20dd\u0e31\u200b\u200c\u200d\ufe0f\ufffd\ufffe\uffff"
    "😀🧪𝄞𐍈\U000e0001\U0010fffd"
)


def fit(text: str, limit: int = MAX_BYTES) -> str:
    """The longest prefix of `text` that is at most `limit` bytes in UTF-8."""
    encoded = text.encode()[:limit]
    return encoded.decode(errors="ignore")  # drops a character cut in half


def exactly(limit: int, *chars: str) -> str:
    """`chars` repeated up to exactly `limit` UTF-8 bytes, padded with ASCII."""
    text = fit("".join(chars) * limit, limit)
    return text + "a" * (limit - len(text.encode()))


# U+0000 is refused with 1007 (PostgreSQL cannot store it): tests/test_bad_input.py.
characters = st.one_of(
    st.characters(codec="utf-8", exclude_characters="\x00"), st.sampled_from(TRICKY)
)
short_texts = st.text(characters, min_size=1, max_size=64)
# Repeated units reach the byte limit, where the size checks and the framing are exercised.
long_texts = st.builds(lambda unit, n: fit(unit * n), short_texts, st.integers(1, MAX_BYTES))
texts = st.one_of(short_texts, long_texts).filter(lambda t: t != "" and not t.isspace())


@dataclass
class Room:
    room_id: str
    sender: ClientConnection
    peer: ClientConnection
    peer_json: ClientConnection
    http: httpx.Client

    def stored(self, **params: object) -> list[dict]:
        response = self.http.get(f"/rooms/{self.room_id}/messages", params=params)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def last_id(self) -> int:
        newest = self.stored(limit=1)
        return newest[0]["id"] if newest else 0


def join(server: ServerProcess, room_id: str, query: str = "", **kwargs) -> ClientConnection:
    return connect(server.ws(room_id, query), max_size=2**24, open_timeout=TIMEOUT, **kwargs)


def recv_json(ws: ClientConnection) -> dict:
    return json.loads(ws.recv(timeout=TIMEOUT))


@pytest.fixture(scope="module")
def room(server: ServerProcess) -> Iterator[Room]:
    """Connections kept open across examples: a round trip costs frames, not handshakes."""
    room_id = unique_room("fuzz")
    with (
        join(server, room_id) as sender,
        join(server, room_id) as peer,
        join(server, room_id, subprotocols=JSON) as peer_json,
        httpx.Client(base_url=server.http, timeout=TIMEOUT) as http,
    ):
        assert recv_json(peer_json) == {"type": "history_end"}
        yield Room(room_id, sender, peer, peer_json, http)


def replay(server: ServerProcess, room_id: str, message_id: int) -> tuple[str, dict]:
    """What a plain and a JSON joiner resuming just before `message_id` are sent first."""
    since = f"?since={message_id - 1}"
    with (
        join(server, room_id, since) as plain,
        join(server, room_id, since, subprotocols=JSON) as js,
    ):
        frame = plain.recv(timeout=TIMEOUT)
        message = recv_json(js)
        assert recv_json(js) == {"type": "history_end"}
    return frame, message


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(text=texts)
@example(text=exactly(MAX_BYTES, "é"))  # 2-byte characters up to the limit
@example(text=exactly(MAX_BYTES, "€"))  # 3-byte, padded with one ASCII byte
@example(text=exactly(MAX_BYTES, "😀"))  # 4-byte, astral
@example(text=exactly(MAX_BYTES, "e\u0301", "\u202e", "ש", "𝄞", "\x01"))
@example(text="\x01")
@example(text="\ufffd")
@example(text="  padded, never trimmed \n")
@example(text="\u202eevil.exe\u202c")
@example(text="👨\u200d👩\u200d👧 🇫🇷 👍🏽")  # ZWJ sequence, flag, skin tone: several code points
def test_any_text_round_trips_byte_for_byte(server: ServerProcess, room: Room, text: str) -> None:
    sent = text.encode()
    assert len(sent) <= MAX_BYTES
    room.sender.send(text)
    assert room.sender.recv(timeout=TIMEOUT, decode=False) == b"You wrote: " + sent
    assert room.peer.recv(timeout=TIMEOUT, decode=False) == b"A client says: " + sent
    live = recv_json(room.peer_json)
    assert (live["type"], live["text"], live["own"]) == ("message", text, False)

    stored = room.stored(after=live["id"] - 1, limit=1)
    assert [(m["id"], m["text"]) for m in stored] == [(live["id"], text)]
    assert stored[0]["text"].encode() == sent

    frame, replayed = replay(server, room.room_id, live["id"])
    assert frame == f"A client says: {text}"
    assert (replayed["id"], replayed["text"], replayed["history"]) == (live["id"], text, True)


whitespace = st.text(st.sampled_from(" \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2028\u2029\u3000"))


@settings(max_examples=25, deadline=None)
@given(blank=whitespace)
def test_empty_and_whitespace_only_text_is_ignored(server: ServerProcess, room: Room, blank: str):
    sentinel = f"after {blank!r}"
    last = room.last_id()
    room.sender.send(blank)
    room.sender.send(sentinel)
    # The first frame after the blank one is the sentinel's: the blank was neither echoed nor
    # sent to the room nor stored.
    assert room.sender.recv(timeout=TIMEOUT) == f"You wrote: {sentinel}"
    assert room.peer.recv(timeout=TIMEOUT) == f"A client says: {sentinel}"
    assert recv_json(room.peer_json)["text"] == sentinel
    assert [m["text"] for m in room.stored(after=last)] == [sentinel]


def closed_with(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed):
        while True:
            ws.recv(timeout=TIMEOUT)
    return ws.close_code


@pytest.mark.parametrize(
    "text",
    [exactly(MAX_BYTES + 1, "é"), exactly(MAX_BYTES + 1, "€"), exactly(MAX_BYTES + 1, "😀", "é")],
    ids=["2-byte", "3-byte", "4-byte"],
)
def test_one_byte_over_the_limit_is_closed_with_1009_and_not_stored(server: ServerProcess, text):
    assert len(text.encode()) == MAX_BYTES + 1 and len(text) < MAX_BYTES
    room_id = unique_room("over")
    with join(server, room_id) as big, join(server, room_id) as other:
        big.send(text)
        assert closed_with(big) == 1009
        other.send("still here")
        assert other.recv(timeout=TIMEOUT) == "You wrote: still here"
    assert [m["text"] for m in server.messages(room_id)] == ["still here"]


# The last is a UTF-16 surrogate pair kept as two code points, as a careless decoder leaves it.
LONE_SURROGATES = ["\ud800", "\udfff", "a\udc00b", "\ud83d\ude00"]


@pytest.mark.parametrize("text", LONE_SURROGATES, ids=["high", "low", "inside", "utf16-pair"])
def test_a_lone_surrogate_cannot_leave_the_client(server: ServerProcess, text: str):
    # UTF-8 has no encoding for a surrogate: the client refuses to build the frame, so nothing
    # reaches the server, and the room and its other clients carry on.
    with pytest.raises(UnicodeEncodeError):
        text.encode()
    room_id = unique_room("surrogate")
    with join(server, room_id) as other:
        with join(server, room_id) as sender, pytest.raises(Exception) as raised:
            sender.send(text)
        assert isinstance(raised.value, UnicodeEncodeError) or isinstance(
            raised.value.__cause__, UnicodeEncodeError
        )
        other.send("unaffected")
        assert other.recv(timeout=TIMEOUT) == "You wrote: unaffected"
    assert [m["text"] for m in server.messages(room_id)] == ["unaffected"]


@pytest.mark.parametrize(
    "payload",
    ["\ud800".encode("utf-8", "surrogatepass"), b"ok \xed\xbf\xbf", b"\xc3", b"\xff\xfe"],
    ids=["CESU-surrogate", "surrogate-inside", "truncated", "not-utf8"],
)
def test_invalid_utf8_forced_into_a_text_frame_is_closed_with_1007(
    server: ServerProcess, payload: bytes
):
    # A client that skips the encoder and sends such bytes as text breaks RFC 6455: the server
    # closes it with 1007 (invalid frame payload data); nobody else notices.
    room_id = unique_room("bad-utf8")
    with join(server, room_id) as bad, join(server, room_id) as other:
        bad.send(payload, text=True)
        assert closed_with(bad) == 1007
        other.send("unaffected")
        assert other.recv(timeout=TIMEOUT) == "You wrote: unaffected"
    assert [m["text"] for m in server.messages(room_id)] == ["unaffected"]
