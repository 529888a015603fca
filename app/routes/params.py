"""Parameters shared by the routes, with the constraints the OpenAPI document publishes."""

import re
from typing import Annotated

from fastapi import Path, Query
from pydantic import BeforeValidator

from app.models import ROOM_ID_MAX
from app.rooms import ROOM_ID_PATTERN

MAX_ID = 2**63 - 1
_DIGITS = re.compile(r"[+-]?[0-9]+")


def _digits_only(value: object) -> object:
    # pydantic's lax mode reads "5.0" as 5; the published schema says integer, and schemathesis
    # rightly counts "5.0" as a value the server must refuse.
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("an integer is written with digits only")
    return value


WholeNumber = BeforeValidator(_digits_only)

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
Limit = Annotated[
    int, Query(ge=1, le=1000, description="How many messages (1 to 1000)"), WholeNumber
]
Cursor = Annotated[int | None, Query(ge=0, le=MAX_ID, description="A message id"), WholeNumber]
MessageId = Annotated[
    int, Path(ge=0, le=MAX_ID, description="The message's id", examples=[17]), WholeNumber
]
