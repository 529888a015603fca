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
