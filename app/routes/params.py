"""Parameters shared by the routes, with the constraints the OpenAPI document publishes."""

from typing import Annotated

from fastapi import Path, Query

from app.models import ROOM_ID_MAX
from app.rooms import ROOM_ID_PATTERN

MAX_ID = 2**63 - 1

RoomId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=ROOM_ID_MAX,
        pattern=ROOM_ID_PATTERN,
        description='1 to 64 of A-Z a-z 0-9 _ - . (not "." or "..")',
        examples=["general"],
    ),
]
Limit = Annotated[int, Query(ge=1, le=1000, description="How many messages (1 to 1000)")]
Cursor = Annotated[int | None, Query(ge=0, le=MAX_ID, description="A message id")]
