"""Who is calling, and which rooms they may use: tokens, names and room patterns.

The one place that answers "may this caller read/write here". REST, the socket, search and the
listings all ask these functions; none of them reads a token itself.

- No `CHAT_AUTH_SECRET`: the open chat. Every room is open; a client may name itself.
- With it: an access token (a JWT, HS256 with that secret, the algorithm fixed here and never
  read from the token) says who the caller is and which room patterns it may use; rooms
  matching `CHAT_PUBLIC_ROOMS` are open to every caller. A token that is presented must be
  valid, in public rooms too.
"""

import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt

from app.rooms import is_valid_room_id

ALGORITHM = "HS256"
SUB_MAX = 64
TOKEN_NAME_MAX = 64
OPEN_NAME_MAX = 32

# A room id, or a room-id prefix followed by `*`, or `*` alone.
_PREFIX = re.compile(r"[A-Za-z0-9_.-]{0,63}")


class Refused(Exception):
    """A caller that may not go on: `code` closes a socket, `status` answers a REST call,
    `reason` names the cause (`no token`, `invalid token`, `token expired`, `room not allowed`)."""

    code = 4401
    status = 401

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotAuthenticated(Refused):
    """No token, or a token that is not valid: 4401 / 401."""


class NotAllowed(Refused):
    """A valid token, but not for this room: 4403 / 403."""

    code = 4403
    status = 403


@dataclass(frozen=True, slots=True)
class Identity:
    """What a valid token says about its holder."""

    sub: str
    name: str
    admin: bool = False
    rooms: tuple[str, ...] | None = None  # room patterns; None: every room
    exp: float | None = None  # seconds since the epoch; None: never expires


@dataclass(frozen=True, slots=True)
class Access:
    """The server's access rules, from the settings: its secret (None: open chat) and the room
    patterns open without a token."""

    secret: str | None = field(default=None, repr=False)
    public: tuple[str, ...] = ()

    @property
    def tokens(self) -> bool:
        return self.secret is not None


@dataclass(frozen=True, slots=True)
class RoomSet:
    """The rooms a caller may read, in a form both Python and SQL can test: every room, or the
    rooms whose id is in `exact` or starts with one of `prefixes`."""

    every: bool = False
    exact: frozenset[str] = field(default_factory=frozenset)
    prefixes: tuple[str, ...] = ()

    def __contains__(self, room_id: str) -> bool:
        return (
            self.every or room_id in self.exact or any(room_id.startswith(p) for p in self.prefixes)
        )


def is_room_pattern(pattern: str) -> bool:
    if pattern.endswith("*"):
        return _PREFIX.fullmatch(pattern[:-1]) is not None
    return is_valid_room_id(pattern)


def pattern_matches(pattern: str, room_id: str) -> bool:
    """Case-sensitive; `*` matches any characters, none included (`team-*` matches `team-`)."""
    if pattern.endswith("*"):
        return room_id.startswith(pattern[:-1])
    return room_id == pattern


def parse_patterns(value: str | None) -> tuple[str, ...]:
    """`CHAT_PUBLIC_ROOMS`: comma-separated patterns, spaces around them ignored.
    ValueError names the first entry that is not a room pattern."""
    if not value:
        return ()
    patterns = tuple(p.strip() for p in value.split(",") if p.strip())
    for pattern in patterns:
        if not is_room_pattern(pattern):
            raise ValueError(f"{pattern!r} is not a room pattern")
    return patterns


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header; None for no header or another
    scheme (a proxy's Basic credentials are not a token)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def identity_from_token(token: str, secret: str) -> Identity:
    """The identity a token proves; NotAuthenticated ('invalid token' or 'token expired')."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise NotAuthenticated("token expired") from None
    except jwt.InvalidTokenError:
        raise NotAuthenticated("invalid token") from None
    identity = _identity(claims)
    if identity is None:
        raise NotAuthenticated("invalid token")
    return identity


def _identity(claims: dict[str, Any]) -> Identity | None:
    sub, name, rooms, admin = (
        claims.get("sub"),
        claims.get("name", claims.get("sub")),
        claims.get("rooms"),
        claims.get("admin", False),
    )
    if not _bounded_text(sub, SUB_MAX) or not _bounded_text(name, TOKEN_NAME_MAX):
        return None
    if not isinstance(admin, bool):
        return None
    if rooms is not None:
        if not isinstance(rooms, list) or not all(
            isinstance(p, str) and is_room_pattern(p) for p in rooms
        ):
            return None
        rooms = tuple(rooms)
    exp = claims.get("exp")
    return Identity(sub, name, admin, rooms, float(exp) if exp is not None else None)


def _bounded_text(value: object, most: int) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= most


def caller(token: str | None, access: Access) -> Identity | None:
    """Who presents `token`: None without a token or in the open chat (where tokens mean
    nothing); NotAuthenticated for a token that is not valid."""
    if token is None or access.secret is None:
        return None
    return identity_from_token(token, access.secret)


def may_use_room(identity: Identity | None, room_id: str, access: Access) -> bool:
    """Whether this caller may read and write `room_id` (the same for both)."""
    if access.secret is None or any(pattern_matches(p, room_id) for p in access.public):
        return True
    if identity is None:
        return False
    return identity.rooms is None or any(pattern_matches(p, room_id) for p in identity.rooms)


def check_room(identity: Identity | None, room_id: str, access: Access) -> None:
    """Raise the refusal of a caller that may not use `room_id`: 'no token' or 'room not
    allowed'."""
    if may_use_room(identity, room_id, access):
        return
    if identity is None:
        raise NotAuthenticated("no token")
    raise NotAllowed("room not allowed")


DELETE_NEEDS_SECRET = "deleting messages needs tokens: the server runs without CHAT_AUTH_SECRET"


def check_deleter(identity: Identity | None, access: Access) -> None:
    """Raise the refusal of a caller that may delete nothing at all: deleting needs tokens on,
    and a token."""
    if access.secret is None:
        raise NotAllowed(DELETE_NEEDS_SECRET)
    if identity is None:
        raise NotAuthenticated("no token")


def check_delete(identity: Identity | None, author_id: str | None, access: Access) -> None:
    """Raise the refusal of a caller that may not delete a message written by `author_id`
    (its token's `sub`): only its author or an admin may, and only with tokens on."""
    check_deleter(identity, access)
    assert identity is not None
    if not identity.admin and (author_id is None or author_id != identity.sub):
        raise NotAllowed("not your message: only its author or an admin may delete it")


def readable_rooms(identity: Identity | None, access: Access) -> RoomSet:
    """Every room this caller may read, for listings and search."""
    if access.secret is None or (identity is not None and identity.rooms is None):
        return RoomSet(every=True)
    own = list(identity.rooms) if identity is not None and identity.rooms else []
    return _room_set([*access.public, *own])


def _room_set(patterns: Iterable[str]) -> RoomSet:
    exact: set[str] = set()
    prefixes: list[str] = []
    for p in patterns:
        if p == "*":
            return RoomSet(every=True)
        if p.endswith("*"):
            prefixes.append(p[:-1])
        else:
            exact.add(p)
    return RoomSet(exact=frozenset(exact), prefixes=tuple(dict.fromkeys(prefixes)))


def open_chat_name(value: str | None) -> str | None:
    """`?name=` of the open chat (and of a tokenless caller in a public room): trimmed, 1 to
    32 characters, no control characters. Empty is no name; ValueError for a bad one."""
    if value is None or value == "":
        return None
    name = value.strip()
    if not 1 <= len(name) <= OPEN_NAME_MAX or any(unicodedata.category(c) == "Cc" for c in name):
        raise ValueError("a name is 1 to 32 characters, no control characters")
    return name


def mint_token(
    secret: str,
    sub: str,
    *,
    name: str | None = None,
    rooms: list[str] | None = None,
    admin: bool = False,
    ttl: float | None = None,
) -> str:
    """A signed access token; `ttl` in seconds, None for no `exp`. ValueError for claims that
    break their rules (so a minted token is always one this server accepts)."""
    claims: dict[str, Any] = {"sub": sub}
    if name is not None:
        claims["name"] = name
    if rooms is not None:
        claims["rooms"] = rooms
    if admin:
        claims["admin"] = True
    if ttl is not None:
        claims["exp"] = int(time.time() + ttl)
    if _identity(claims) is None:
        raise ValueError("sub and name are 1 to 64 characters; rooms are room patterns")
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
