"""Moving a chat from SQLite to PostgreSQL and back with `export` and `import` (the real
PostgreSQL of shared/SERVICES.md)."""

from __future__ import annotations

import pytest

from tests.support import unique_room
from tests.transfer_support import (
    export,
    history,
    import_file,
    lines,
    message,
    ndjson,
    rooms,
    search,
    send,
    sqlite_url,
    summary,
    write_ndjson,
)

pytestmark = pytest.mark.services

ROOMS = [f"room-{i}" for i in range(7)]


def test_sqlite_to_postgres_to_sqlite_gives_identical_ndjson(tmp_path, fresh_postgres_url):
    first, last = sqlite_url(tmp_path / "first.db"), sqlite_url(tmp_path / "last.db")
    source = write_ndjson(tmp_path / "source.ndjson", history(10_000, ROOMS))
    assert summary(import_file(first, source)) == "imported 10000, already present 0, skipped 0"
    from_sqlite = export(first)
    assert from_sqlite == source.read_bytes()

    (tmp_path / "from-sqlite.ndjson").write_bytes(from_sqlite)
    moved = import_file(fresh_postgres_url, tmp_path / "from-sqlite.ndjson")
    assert (moved.returncode, moved.stderr) == (0, "")
    assert summary(moved) == "imported 10000, already present 0, skipped 0"
    from_postgres = export(fresh_postgres_url)
    assert from_postgres == from_sqlite

    again = import_file(fresh_postgres_url, tmp_path / "from-sqlite.ndjson")
    assert (again.returncode, summary(again)) == (0, "imported 0, already present 10000, skipped 0")
    assert export(fresh_postgres_url) == from_postgres

    (tmp_path / "from-postgres.ndjson").write_bytes(from_postgres)
    back = import_file(last, tmp_path / "from-postgres.ndjson")
    assert summary(back) == "imported 10000, already present 0, skipped 0"
    assert export(last) == from_sqlite


def test_postgres_after_an_import_counts_finds_and_numbers_on(
    tmp_path, fresh_postgres_url, start_server
):
    room = unique_room()
    odd = [message(i, room, author="ana") for i in range(1, 400, 2)]
    others = history(300, ROOMS, first=1000)
    source = write_ndjson(tmp_path / "in.ndjson", odd + others)
    assert import_file(fresh_postgres_url, source).returncode == 0
    server = start_server({"CHAT_RATE_LIMIT": "0"}, database_url=fresh_postgres_url)

    assert server.all_messages(room) == odd
    listed = rooms(server)
    assert (listed[room]["messages"], listed[room]["last_message_at"]) == (
        len(odd),
        odd[-1]["created_at"],
    )
    for name in ROOMS:
        assert listed[name]["messages"] == len([m for m in others if m["room_id"] == name])
    assert [h["id"] for h in search(server, "word201", room)] == [201]

    first = send(server, room, "after the import")
    assert first["id"] > 1299  # the sequence was moved past every imported id
    # A new id in a gap below the newest (ids are odd): the sequence is never moved back, or
    # the next message would be given id 201, which is taken.
    lower = write_ndjson(tmp_path / "lower.ndjson", [message(200, room)])
    assert summary(import_file(fresh_postgres_url, lower)).startswith("imported 1,")
    assert send(server, room, "after a lower id")["id"] == first["id"] + 1
    ids = [m["id"] for m in server.all_messages(room)]
    assert ids == sorted(set(ids)) and 200 in ids


def test_a_conflicting_id_on_postgres_is_reported_and_skipped(tmp_path, fresh_postgres_url):
    stored = [message(i, "general") for i in range(1, 6)]
    first = import_file(fresh_postgres_url, write_ndjson(tmp_path / "a.ndjson", stored))
    assert first.returncode == 0
    changed = [{**stored[2], "author": "someone"}, message(6, "general")]
    (tmp_path / "b.ndjson").write_bytes(b"{oops\n" + ndjson(changed))
    result = import_file(fresh_postgres_url, tmp_path / "b.ndjson")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "line 1: not JSON",
        "line 2: id 3 is stored with another author",
    ]
    assert summary(result) == "imported 1, already present 0, skipped 2"
    assert lines(export(fresh_postgres_url)) == [*stored, changed[1]]
