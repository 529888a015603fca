"""The JSON frames' times are written exactly as `iso_utc` writes them, whichever way the frame
encodes them (app/frames.py: orjson for a time in UTC with microseconds, `iso_utc` else)."""

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from app.frames import BroadcastFrames, history_frame, own_copy_frame
from app.messages import StoredMessage, iso_utc

TIMES = [
    datetime(2026, 12, 1, 16, 48, 42, 123456, tzinfo=UTC),
    datetime(2026, 12, 1, 16, 48, 42, 5, tzinfo=UTC),  # leading zeros of the fraction
    datetime(2026, 12, 1, 16, 48, 42, tzinfo=UTC),  # a whole second: still six digits
    datetime(2026, 12, 1, 17, 48, 42, 500000, tzinfo=timezone(timedelta(hours=1))),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", TIMES, ids=str)
def test_every_json_frame_writes_created_at_as_iso_utc(moment: datetime) -> None:
    message = StoredMessage(7, "room", "text", moment, "Ann", "ann", key="k-1")
    expected = iso_utc(moment)
    assert len(expected) == len("2026-12-01T16:48:42.123456Z") and expected.endswith("Z")
    broadcast = BroadcastFrames(message)
    frames = [
        broadcast.for_client(json=True),
        broadcast.for_sender(json=True),
        broadcast.for_same_user(),
        history_frame(message, json=True),
        own_copy_frame(message, json=True),
    ]
    for frame in frames:
        assert orjson.loads(frame["text"])["created_at"] == expected


def _whole(message: StoredMessage, *, history: bool, own: bool, key: str | None) -> str:
    """The frame as one encoding of its whole object (what app/frames.py wrote before it
    encoded a broadcast's shared fields once)."""
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
    if key is not None:
        body["key"] = key
    return orjson.dumps(body).decode()


@pytest.mark.parametrize(
    ("text", "author", "key"),
    [
        ("plain", "Ann", "k-1"),
        ('quotes " and \\ and }', None, "0190c5a1-7b2e-7c3d-8e4f-5a6b7c8d9e0f"),
        ("emoji 🎉 and \u2028 and <b>", "Zoë", None),
        ("", "a" * 64, "_" * 64),
    ],
)
def test_each_json_variant_is_its_whole_object_encoded(
    text: str, author: str | None, key: str | None
) -> None:
    moment = datetime(2026, 12, 2, 1, 30, 0, 123456, tzinfo=UTC)
    message = StoredMessage(42, "room-7", text, moment, author, "ann", key=key)
    broadcast = BroadcastFrames(message)
    assert broadcast.for_client(json=True)["text"] == _whole(
        message, history=False, own=False, key=None
    )
    assert broadcast.for_sender(json=True)["text"] == _whole(
        message, history=False, own=True, key=key
    )
    assert broadcast.for_same_user()["text"] == _whole(message, history=False, own=True, key=None)
    assert history_frame(message, json=True, own=True)["text"] == _whole(
        message, history=True, own=True, key=None
    )
    assert own_copy_frame(message, json=True)["text"] == _whole(
        message, history=False, own=True, key=key
    )
    for frame in (broadcast.for_client(json=True), broadcast.for_sender(json=True)):
        assert orjson.loads(frame["text"])["text"] == text
