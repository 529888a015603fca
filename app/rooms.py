"""What a room id may be: 1 to 64 of A-Z a-z 0-9 _ - . but not "." or ".." (URLs collapse them)."""

import re

# No look-ahead: the pattern is also checked by pydantic-core and by OpenAPI clients.
ROOM_ID_PATTERN = (
    r"^(?:[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}"
    r"|\.[A-Za-z0-9_-][A-Za-z0-9_.-]{0,62}"
    r"|\.\.[A-Za-z0-9_.-]{1,62})$"
)
_ROOM_ID = re.compile(ROOM_ID_PATTERN)


def is_valid_room_id(room_id: str) -> bool:
    return _ROOM_ID.fullmatch(room_id) is not None
