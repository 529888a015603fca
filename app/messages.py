"""The committed message as it travels from the writer through the broker to the hub."""

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(slots=True, frozen=True)
class StoredMessage:
    id: int
    room_id: str
    text: str
    created_at: datetime
    # The token of the connection that sent it (for `own`/"You wrote"); None for history.
    sender: str | None = None


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a Z, the one timestamp format of every output."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
