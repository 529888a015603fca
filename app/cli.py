"""What the subcommands share: their settings, and their one-line errors on stderr."""

import argparse
import sys

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from app.rooms import is_valid_room_id
from app.settings import Settings, settings_error


class CommandError(Exception):
    """A command that cannot go on; its text is the one line the operator reads."""


def load_settings() -> Settings:
    """The CHAT_ settings; CommandError naming each variable whose value cannot be taken."""
    try:
        return Settings()
    except ValidationError as exc:
        raise CommandError(settings_error(exc)) from None


def fail(prog: str, message: str, status: int = 2) -> int:
    """Write `prog: message` as one line on stderr; the exit status."""
    line = " ".join(message.split())  # one line, whatever the message held
    sys.stderr.write(f"{prog}: {line}\n")
    return status


def open_engine(settings: Settings) -> AsyncEngine:
    """An engine on CHAT_DATABASE_URL, with the server's own SQLite pragmas."""
    return create_engine(
        settings.database_url,
        sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        sqlite_synchronous=settings.sqlite_synchronous,
    )


def room_argument(text: str) -> str:
    """An argparse `type=`: a room id, or a usage error."""
    if not is_valid_room_id(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a room id")
    return text
