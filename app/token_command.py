"""`python -m app token SUB ...`: mint an access token, or an invite link to a room page."""

import argparse
import sys

from pydantic import ValidationError

from app import auth
from app.cli import room_argument
from app.durations import parse_duration
from app.settings import Settings

DEFAULT_TTL = "30d"


def _pattern(text: str) -> str:
    if not auth.is_room_pattern(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a room pattern (ROOM, PREFIX* or *)")
    return text


def _ttl(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m app token",
        description="Print an access token signed with CHAT_AUTH_SECRET (or an invite link).",
    )
    parser.add_argument("sub", help="the user id (1 to 64 characters)")
    parser.add_argument("--name", help="display name (default: the user id)")
    parser.add_argument(
        "--room",
        dest="rooms",
        action="append",
        type=_pattern,
        metavar="PATTERN",
        help="a room pattern the token may read and write (repeatable; default: every room, "
        "or with --link only that room)",
    )
    parser.add_argument("--admin", action="store_true", help="may delete any message")
    parser.add_argument(
        "--ttl",
        type=_ttl,
        default=DEFAULT_TTL,
        help="lifetime: 30d, 12h, 90m, 45s; 0: no expiry (default: %(default)s)",
    )
    parser.add_argument("--link", type=room_argument, metavar="ROOM", help="print an invite link")
    parser.add_argument(
        "--base-url", help="the chat's address for --link (default: http://CHAT_HOST:CHAT_PORT)"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        names = ", ".join(f"CHAT_{str(e['loc'][0]).upper()}" for e in exc.errors())
        sys.stderr.write(f"python -m app token: invalid setting {names}\n")
        return 2
    if settings.auth_secret is None:
        sys.stderr.write("python -m app token: CHAT_AUTH_SECRET is not set: no tokens\n")
        return 2
    rooms = args.rooms if args.rooms or not args.link else [args.link]
    try:
        token = auth.mint_token(
            settings.auth_secret.get_secret_value(),
            args.sub,
            name=args.name,
            rooms=rooms,
            admin=args.admin,
            ttl=args.ttl or None,
        )
    except ValueError as exc:
        sys.stderr.write(f"python -m app token: {exc}\n")
        return 2
    if args.link is None:
        sys.stdout.write(token + "\n")
        return 0
    base = (args.base_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    sys.stdout.write(f"{base}/rooms/{args.link}#access_token={token}\n")
    return 0
