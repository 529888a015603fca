"""`python -m app import FILE|-`: read an export (NDJSON) into the database of CHAT_DATABASE_URL.

The schema is migrated first. Lines are read and written a batch at a time (memory flat at any
size); each batch is one transaction (app/store_transfer.py), so an import cut short leaves
whole batches and can simply be run again: what is stored already counts as "already present".
A line that is not a message, or whose id is stored with other content, is reported on stderr
as `line N: reason` (in line order) and skipped; the exit status is then 1. The last line on
stdout counts the lines imported, already present and skipped.

Import is for a database no server is using: on SQLite it takes the server's own lock
(app/sqlite_guard.py) for its whole run, so it refuses while a server runs, and a server
refuses to start during it.
"""

import argparse
import asyncio
import gc
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy.exc import SQLAlchemyError

from app import sqlite_guard
from app.cli import CommandError, fail, load_settings, open_engine
from app.progress import progress_bar
from app.schema import SchemaNotReady, prepare_schema
from app.settings import Settings
from app.sqlite_thread import database_file
from app.store_transfer import Importer, Outcome, open_importer
from app.transfer_format import BadLine, ImportedMessage, parse_line

PROG = "python -m app import"
BATCH = 5000  # lines a transaction: large enough that a commit's cost is spread thin


@dataclass(slots=True)
class Counts:
    imported: int = 0
    present: int = 0
    skipped: int = 0

    def summary(self) -> str:
        return f"imported {self.imported}, already present {self.present}, skipped {self.skipped}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Read messages exported by `python -m app export` (NDJSON) into the "
        "database of CHAT_DATABASE_URL, keeping their ids, rooms, texts, authors and times. "
        "Messages stored already are left as they are; bad lines are reported and skipped "
        "(exit status 1).",
    )
    parser.add_argument("file", metavar="FILE", help="the NDJSON file, or - for stdin")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    counts = Counts()
    try:
        settings = load_settings()
        _claim(settings.database_url)
        with _open(args.file) as source:
            asyncio.run(_import(settings, source, counts))
    except (CommandError, SchemaNotReady, SQLAlchemyError, OSError) as exc:
        status = fail(PROG, str(exc))
        if counts.imported or counts.present or counts.skipped:
            sys.stdout.write(counts.summary() + " (stopped)\n")
        return status
    sys.stdout.write(counts.summary() + "\n")
    return 1 if counts.skipped else 0


def _claim(database_url: str) -> None:
    try:
        sqlite_guard.claim(database_url)  # held until this process ends
    except sqlite_guard.AlreadyServed:
        raise CommandError(
            f"a server (or another import) is using the SQLite database "
            f"{database_file(database_url)}: stop it first (import is for a database no "
            "server is using)"
        ) from None


def _open(name: str) -> BinaryIO:
    if name == "-":
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    return open(name, "rb")


async def _import(settings: Settings, source: BinaryIO, counts: Counts) -> None:
    engine = open_engine(settings)
    try:
        await prepare_schema(engine, auto_migrate=True)
        importer = open_importer(engine)
        try:
            await _read(source, importer, settings.max_message_bytes, counts)
        finally:
            await importer.close()
    finally:
        await engine.dispose()


@dataclass(slots=True)
class _Batch:
    """A batch on its way: its write (running), and its lines found bad while reading."""

    write: "asyncio.Task[Outcome] | None"
    bad: list[tuple[int, str]]


async def _read(source: BinaryIO, importer: Importer, max_bytes: int, counts: Counts) -> None:
    """Every BATCH lines a batch: its valid lines are written in one transaction while the
    next batch is read (SQLite writes in a thread of its own), then its bad lines reported,
    in line order. One batch is written at a time: each sees what the one before stored."""
    lines: list[ImportedMessage] = []
    bad: list[tuple[int, str]] = []
    previous: _Batch | None = None
    read = 0
    with progress_bar(total=_size(source), unit="B", unit_scale=True) as bar, _no_cycles():
        for number, line in enumerate(source, 1):
            read += len(line)
            if line.strip():  # blank lines are no messages: passed over, not counted
                try:
                    lines.append(parse_line(number, line, max_bytes))
                except BadLine as exc:
                    bad.append((number, str(exc)))
            if number % BATCH == 0:
                previous = await _hand_over(importer, previous, lines, bad, counts)
                lines, bad = [], []
                bar.update(read)
                read = 0
        previous = await _hand_over(importer, previous, lines, bad, counts)
        await _finish(previous, counts)
        bar.update(read)


@contextmanager
def _no_cycles() -> Iterator[None]:
    """Python's cyclic garbage collector off while lines are read: the objects of a line form
    no cycles, but allocating millions of them kept setting it off (py-spy: an eighth of the
    main thread's time, walking batches that were still in use)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _hand_over(
    importer: Importer,
    previous: _Batch | None,
    lines: list[ImportedMessage],
    bad: list[tuple[int, str]],
    counts: Counts,
) -> _Batch:
    """Finish the batch before, then start writing this one."""
    await _finish(previous, counts)
    write = asyncio.ensure_future(importer.write(lines)) if lines else None
    await asyncio.sleep(0)  # let the write begin (hand its work to the SQLite thread) now
    return _Batch(write, bad)


async def _finish(batch: _Batch | None, counts: Counts) -> None:
    if batch is None:
        return
    if batch.write is not None:
        outcome = await batch.write
        counts.imported += outcome.imported
        counts.present += outcome.present
        batch.bad += outcome.conflicts
    counts.skipped += len(batch.bad)
    if batch.bad:
        sys.stderr.write("".join(f"line {n}: {reason}\n" for n, reason in sorted(batch.bad)))


def _size(source: BinaryIO) -> int | None:
    """The file's size for the progress line; None for a pipe."""
    try:
        info = os.fstat(source.fileno())
    except (OSError, ValueError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None
