"""`python -m app export` and `python -m app import` on SQLite, checked through a real server.
tests/test_transfer_postgres.py moves the same data through PostgreSQL."""

from __future__ import annotations

import os
import pty
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from alembic import command

from app.schema import alembic_config
from bench.bulk import bulk_load
from tests.support import ROOT, ServerProcess, unique_room
from tests.transfer_support import (
    export,
    history,
    import_file,
    lines,
    message,
    ndjson,
    rooms,
    run_app,
    search,
    send,
    sqlite_url,
    summary,
    write_ndjson,
)

ROOMS = ["general", "team-a", "team.b", "x_1"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, bytes]]:
    """2,000 messages imported into a new SQLite file, then a server on it; and the file."""
    workdir = tmp_path_factory.mktemp("imported")
    url = sqlite_url(workdir / "chat.db")
    data = ndjson(history(2000, ROOMS))
    result = import_file(url, write_ndjson(workdir / "in.ndjson", lines(data)))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert summary(result) == "imported 2000, already present 0, skipped 0"
    server = ServerProcess(workdir, {"CHAT_RATE_LIMIT": "0"}, database_url=url).start()
    yield server, data
    server.stop()


def test_export_while_the_server_runs_gives_the_imported_lines_in_the_rest_shape(imported):
    server, data = imported
    exported = export(server.database_url, *[f"--room={r}" for r in ROOMS])
    assert exported == data  # byte for byte: same keys, order, times and texts
    for room in ROOMS:
        assert server.all_messages(room) == [m for m in lines(data) if m["room_id"] == room]


def test_room_counts_follow_an_import(imported):
    server, data = imported
    listed = rooms(server)
    for room in ROOMS:
        mine = [m for m in lines(data) if m["room_id"] == room]
        assert listed[room]["messages"] == len(mine)
        assert listed[room]["last_message_at"] == mine[-1]["created_at"]


def test_imported_messages_are_found_by_search(imported):
    server, data = imported
    for m in lines(data)[::250]:
        hits = search(server, f"word{m['id']}", m["room_id"])
        assert [h["id"] for h in hits] == [m["id"]]  # found, and indexed once


def test_the_search_index_holds_each_imported_message_once(imported):
    server, _ = imported
    with sqlite3.connect(server.workdir / "chat.db") as db:
        # External content: FTS5 compares its index with the messages table row by row.
        db.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")


def test_new_messages_after_an_import_get_higher_ids(tmp_path, start_server):
    url = sqlite_url(tmp_path / "chat.db")
    room = unique_room()
    # Odd ids only: a later import can fill a gap below the newest id.
    odd = [message(i, room) for i in range(1, 200, 2)]
    assert import_file(url, write_ndjson(tmp_path / "odd.ndjson", odd)).returncode == 0
    server = start_server({"CHAT_RATE_LIMIT": "0"}, database_url=url)
    first = send(server, room, "after the import")
    assert first["id"] > 199
    server.stop()
    # A new message below the newest id: the next id still goes up, never back into the gaps.
    gap = tmp_path / "gap.ndjson"
    assert import_file(url, write_ndjson(gap, [message(100, room)])).returncode == 0
    server = start_server({"CHAT_RATE_LIMIT": "0"}, database_url=url)
    assert send(server, room, "after the second import")["id"] > first["id"]
    assert [m["id"] for m in server.all_messages(room)][-3:] == [199, first["id"], first["id"] + 1]


def test_importing_the_same_file_again_changes_nothing(tmp_path):
    url = sqlite_url(tmp_path / "chat.db")
    source = write_ndjson(tmp_path / "in.ndjson", history(300, ROOMS))
    assert import_file(url, source).returncode == 0
    before, counts = export(url), _room_rows(tmp_path / "chat.db")
    again = run_app(url, "import", "-", stdin=source.read_bytes())  # from stdin this time
    assert (again.returncode, again.stderr) == (0, "")
    assert summary(again) == "imported 0, already present 300, skipped 0"
    assert export(url) == before
    assert _room_rows(tmp_path / "chat.db") == counts
    with sqlite3.connect(tmp_path / "chat.db") as db:
        db.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")


def test_bad_lines_and_conflicting_ids_are_reported_by_line_number(tmp_path):
    url = sqlite_url(tmp_path / "chat.db")
    stored = [message(i, "general") for i in range(1, 11)]
    assert import_file(url, write_ndjson(tmp_path / "first.ndjson", stored)).returncode == 0
    good = [message(i, "general") for i in (11, 12, 13)]
    entries: list[bytes] = [
        orjson.dumps(good[0]),  # 1
        b"{not json",  # 2
        orjson.dumps({**stored[4], "text": "changed"}),  # 3: id 5 stored with another text
        orjson.dumps({k: v for k, v in good[1].items() if k != "author"}),  # 4
        orjson.dumps({**good[1], "room_id": "a b"}),  # 5
        b"",  # 6: blank, passed over
        orjson.dumps({**good[1], "text": "   "}),  # 7
        orjson.dumps({**good[1], "text": "nul \x00 inside"}),  # 8
        orjson.dumps({**good[1], "text": "x" * 4097}),  # 9
        orjson.dumps({**good[1], "author": "a" * 65}),  # 10
        orjson.dumps({**good[1], "created_at": "2026-03-01T12:00:00"}),  # 11: no zone
        orjson.dumps({**good[1], "id": 0}),  # 12
        orjson.dumps({**good[1], "id": "12"}),  # 13
        orjson.dumps({**good[1], "id": True}),  # 14
        b"[1, 2]",  # 15
        orjson.dumps(good[1]),  # 16
        orjson.dumps({**good[1], "room_id": "elsewhere"}),  # 17: id 12 again, other room
        orjson.dumps(stored[5]),  # 18: already present
        orjson.dumps(good[2]),  # 19
        orjson.dumps(good[2]),  # 20: the same line twice
    ]
    source = tmp_path / "mixed.ndjson"
    source.write_bytes(b"\n".join(entries) + b"\n")
    result = import_file(url, source)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "line 2: not JSON",
        "line 3: id 5 is stored with another text",
        "line 4: no 'author'",
        "line 5: 'room_id' is not a room id",
        "line 7: 'text' is empty",
        "line 8: 'text' holds U+0000",
        "line 9: 'text' is over 4096 bytes (CHAT_MAX_MESSAGE_BYTES)",
        "line 10: 'author' is not null or 1 to 64 characters",
        "line 11: 'created_at' is not an ISO 8601 time with a time zone",
        "line 12: 'id' is not an integer from 1 to 2^63-1",
        "line 13: 'id' is not an integer from 1 to 2^63-1",
        "line 14: 'id' is not an integer from 1 to 2^63-1",
        "line 15: not a JSON object",
        "line 17: id 12 is on line 16 with another room_id",
    ]
    assert summary(result) == "imported 3, already present 2, skipped 14"
    assert lines(export(url)) == stored + good  # id 5 kept as it was


def test_export_filters_by_room_and_time(tmp_path):
    url = sqlite_url(tmp_path / "chat.db")
    start = datetime(2026, 5, 1, tzinfo=UTC)
    every = [
        message(i, ["a", "b", "c"][i % 3], at=start + timedelta(hours=i)) for i in range(1, 61)
    ]
    assert import_file(url, write_ndjson(tmp_path / "in.ndjson", every)).returncode == 0
    since, until = start + timedelta(hours=10), start + timedelta(hours=40)

    def wanted(rooms: set[str]) -> list[dict[str, object]]:
        return [
            m
            for m in every
            if m["room_id"] in rooms
            and since <= datetime.fromisoformat(str(m["created_at"])) < until
        ]

    # --since is inclusive (hour 10 is in), --until exclusive (hour 40 is out).
    chosen = export(url, "--room", "a", "--room", "b", "--since", "2026-05-01T10:00:00Z",
                    "--until", "2026-05-02T17:00:00+01:00")  # fmt: skip
    assert lines(chosen) == wanted({"a", "b"})
    ids = {m["id"] for m in lines(chosen)}
    assert 10 in ids and 40 not in ids and 9 not in ids
    # No zone means UTC; a date alone is midnight.
    assert lines(export(url, "--since", "2026-05-01T10:00", "--until", "2026-05-02T16:00")) == (
        wanted({"a", "b", "c"})
    )
    assert lines(export(url, "--until", "2026-05-01")) == []
    assert lines(export(url, "--room", "nobody")) == []


def test_import_refuses_while_a_server_runs_on_the_sqlite_file(tmp_path, start_server):
    server = start_server()
    room = unique_room()
    source = write_ndjson(tmp_path / "in.ndjson", [message(1, room)])
    result = import_file(server.database_url, source)
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "server" in line and "chat.db" in line
    assert server.messages(room) == []


def test_export_of_a_missing_database_fails_in_one_line_and_creates_nothing(tmp_path):
    result = run_app(sqlite_url(tmp_path / "none.db"), "export", "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "none.db" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_import_migrates_a_first_release_database_first(tmp_path):
    path = tmp_path / "chat.db"
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", sqlite_url(path))
    command.upgrade(config, "0001")
    source = write_ndjson(tmp_path / "in.ndjson", history(20, ROOMS))
    result = import_file(sqlite_url(path), source)
    assert (result.returncode, summary(result)) == (0, "imported 20, already present 0, skipped 0")
    assert export(sqlite_url(path)) == source.read_bytes()


@pytest.mark.parametrize("command_line", [["export"], ["import", "in.ndjson"]])
def test_a_progress_line_is_drawn_only_on_a_terminal(tmp_path, command_line):
    url = sqlite_url(tmp_path / "chat.db")
    write_ndjson(tmp_path / "in.ndjson", history(50, ROOMS))
    assert import_file(url, tmp_path / "in.ndjson").returncode == 0
    piped = subprocess.run(
        [sys.executable, "-m", "app", *command_line],
        cwd=tmp_path,
        env={**os.environ, "CHAT_DATABASE_URL": url, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=60,
    )
    assert piped.stderr == b""
    assert _on_a_terminal(command_line, url, tmp_path)


def _on_a_terminal(command_line: list[str], url: str, cwd: Path) -> bytes:
    """What the command draws on stderr when stderr is a terminal (stdout still piped)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", *command_line],
        cwd=cwd,
        env={**os.environ, "CHAT_DATABASE_URL": url, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    assert proc.wait(60) in (0, 1)
    return drawn


@pytest.mark.slow
def test_export_memory_stays_flat_at_a_million_messages(tmp_path):
    small, large = _seed(tmp_path / "small.db", 100_000), _seed(tmp_path / "large.db", 1_000_000)
    peak_small = _export_peak_kb(small, tmp_path / "small.ndjson")
    peak_large = _export_peak_kb(large, tmp_path / "large.ndjson")
    with (tmp_path / "large.ndjson").open("rb") as out:
        count = sum(1 for _ in out)
    assert count == 1_000_000
    assert peak_large < 150 * 1024, f"{peak_large} KB"
    # Ten times the messages, about the same memory: nothing grows with the table.
    assert peak_large - peak_small < 20 * 1024, (peak_small, peak_large)


def _seed(path: Path, count: int) -> Path:
    """`count` messages in 20 rooms, written straight into a migrated file (no search index:
    export does not read it)."""
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", sqlite_url(path))
    command.upgrade(config, "head")
    with sqlite3.connect(path) as db, bulk_load(db, index=False):
        db.execute("PRAGMA synchronous=OFF")
        db.executemany(
            "INSERT INTO messages (id, room_id, text, created_at, author) VALUES (?, ?, ?, ?, ?)",
            (
                (i, f"room-{i % 20}", f"message {i} " + "x" * 80, "2026-01-01 00:00:00.000000", "u")
                for i in range(1, count + 1)
            ),
        )
    return path


# VmHWM of the export's own memory map: ru_maxrss would carry the high-water mark of the
# process that started it across the exec (an xdist worker grown by earlier tests).
_PEAK = (
    "import re, sys\n"
    "from app.__main__ import main\n"
    "status = main(sys.argv[1:])\n"
    "status_text = open('/proc/self/status').read()\n"
    "sys.stderr.write(re.search(r'VmHWM:\\s+(\\d+) kB', status_text).group(1))\n"
    "sys.exit(status)\n"
)


def _export_peak_kb(database: Path, out: Path) -> int:
    """The export's peak resident memory, KB (Linux's VmHWM of the process itself)."""
    result = subprocess.run(
        [sys.executable, "-c", _PEAK, "export", "-o", str(out)],
        cwd=ROOT,
        env={**os.environ, "CHAT_DATABASE_URL": sqlite_url(database)},
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stderr)


def _room_rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT * FROM rooms ORDER BY room_id").fetchall()


def test_the_rest_api_and_an_export_agree_on_messages_the_server_wrote(tmp_path, start_server):
    server = start_server({"CHAT_RATE_LIMIT": "0"})
    room = unique_room()
    for text in ["hello", 'with "quotes"', "Café ☃"]:
        send(server, room, text, query="?name=Zoë")
    send(server, room, "anonymous")
    listed = httpx.get(f"{server.http}/rooms/{room}/messages", timeout=10).json()
    assert [m["author"] for m in listed] == ["Zoë", "Zoë", "Zoë", None]
    assert lines(export(server.database_url, "--room", room)) == listed
