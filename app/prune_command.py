"""`python -m app prune --older-than DURATION`: delete old messages once, now.

The same batches as the server's retention (app/retention.py), so it may run while a server
uses the database. On SQLite, when no server holds the file, it also merges the search index
(the deleted messages' words leave the file); a server merges it at its next clean stop after
deleting anything itself.
"""

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from app import sqlite_guard
from app.durations import parse_duration
from app.settings import Settings, settings_error


def _duration(text: str) -> str:
    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m app prune",
        description="Delete the messages older than DURATION from the database of "
        "CHAT_DATABASE_URL, now, and print how many.",
    )
    parser.add_argument(
        "--older-than",
        type=_duration,
        required=True,
        metavar="DURATION",
        help="30d, 12h, 90m, 45s (a bare number is seconds)",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.stderr.write(f"{settings_error(exc)}\n")
        return 2
    try:
        age = timedelta(seconds=parse_duration(args.older_than))
        deleted = asyncio.run(_prune(settings, age))
    except Exception as exc:  # one line, no traceback: the database's own words
        sys.stderr.write(f"prune failed: {type(exc).__name__}: {exc}\n")
        return 1
    sys.stdout.write(f"deleted {deleted} message(s) older than {args.older_than}\n")
    return 0


async def _prune(settings: Settings, age: timedelta) -> int:
    # Imported here, as the server's start does: a refused command does not wait for them.
    from app.cli import open_engine
    from app.retention import PAUSE_BESIDE_A_SERVER, prune
    from app.schema import prepare_schema
    from app.store import Store

    engine = open_engine(settings)
    try:
        await prepare_schema(engine, auto_migrate=settings.auto_migrate)
        store = Store(engine)
        try:
            deleted = await prune(store, datetime.now(UTC) - age, pause=PAUSE_BESIDE_A_SERVER)
        finally:
            if not _alone_on(settings.database_url):
                store.deleted_since_start = False  # a server's writes must not wait for a merge
            await store.close()
        return deleted
    finally:
        await engine.dispose()


def _alone_on(database_url: str) -> bool:
    """Whether no server uses this SQLite file (always True elsewhere: nothing to merge)."""
    try:
        sqlite_guard.claim(database_url)
    except sqlite_guard.AlreadyServed:
        return False
    return True
