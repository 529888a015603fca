"""`python -m app export [--room ROOM]... [--since TIME] [--until TIME] [-o FILE]`: the stored
messages as NDJSON (app/transfer_format.py), oldest first by id, streamed.

It only reads: it may run while the server runs (on SQLite under WAL the server's writer does
not wait for it). With `-o` the file appears whole or not at all (written aside, then renamed),
so a failed export never leaves a shorter file that looks complete.
"""

import argparse
import asyncio
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.exc import SQLAlchemyError

from app.cli import CommandError, fail, load_settings, open_engine, room_argument
from app.progress import on_terminal, progress_bar
from app.settings import Settings
from app.store_transfer import (
    ExportFilter,
    NotExportable,
    check_exportable,
    count_messages,
    export_batches,
)
from app.transfer_format import encode

PROG = "python -m app export"


def parse_time(text: str) -> datetime:
    """ISO 8601 (`2026-11-24`, `2026-11-24T21:40`, `...Z`, `...+01:00`); no zone means UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-24 or 2026-11-24T21:40:00Z)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write the stored messages of CHAT_DATABASE_URL as NDJSON (one message "
        "object a line, the REST API's shape, oldest first by id).",
    )
    parser.add_argument(
        "--room",
        dest="rooms",
        action="append",
        type=room_argument,
        default=[],
        metavar="ROOM",
        help="only this room (repeatable; default: every room)",
    )
    parser.add_argument(
        "--since", type=parse_time, metavar="TIME", help="only messages created at or after TIME"
    )
    parser.add_argument(
        "--until", type=parse_time, metavar="TIME", help="only messages created before TIME"
    )
    parser.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write to FILE (default: stdout)"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    which = ExportFilter(tuple(dict.fromkeys(args.rooms)), args.since, args.until)
    try:
        settings = load_settings()
        if args.output is None:
            asyncio.run(_export(settings, which, sys.stdout.buffer))
        else:
            _export_to_file(settings, which, args.output)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (CommandError, NotExportable, SQLAlchemyError, OSError) as exc:
        return fail(PROG, str(exc))
    return 0


def _export_to_file(settings: Settings, which: ExportFilter, path: Path) -> None:
    # Beside the target, so that the rename cannot cross file systems.
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            asyncio.run(_export(settings, which, out))
        os.replace(partial, path)
    except BaseException:
        os.unlink(partial)
        raise


async def _export(settings: Settings, which: ExportFilter, out: BinaryIO) -> None:
    engine = open_engine(settings)
    try:
        await check_exportable(engine)
        total = await count_messages(engine, which) if on_terminal() else None
        with progress_bar(total=total, unit="msg", unit_scale=True) as bar:
            async for rows in export_batches(engine, which):
                out.write(encode(rows))
                bar.update(len(rows))
        out.flush()
    finally:
        await engine.dispose()
