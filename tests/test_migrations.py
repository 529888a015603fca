"""The schema belongs to Alembic: upgrade, downgrade, agreement with the models, start-up."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients import join, recv, recv_n
from tests.support import ROOT, ServerProcess

pytestmark = pytest.mark.anyio


def alembic(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHAT_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


# The search index: FTS5's table and its shadow tables, and (0008) the mark it is current to.
FTS_TABLES = {
    "messages_fts",
    "messages_fts_data",
    "messages_fts_idx",
    "messages_fts_config",
    "messages_fts_state",
}


def tables(db: Path) -> set[str]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    return {name for (name,) in rows} - {"sqlite_sequence"}


def test_upgrade_head_then_downgrade_base_on_a_fresh_database(tmp_path):
    db = tmp_path / "fresh.db"
    up = alembic(db, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert tables(db) - FTS_TABLES == {"alembic_version", "messages", "rooms"}
    assert "messages_fts" in tables(db)
    down = alembic(db, "downgrade", "base")
    assert down.returncode == 0, down.stderr
    assert tables(db) == {"alembic_version"}


def test_models_and_migrations_agree(tmp_path):
    db = tmp_path / "check.db"
    assert alembic(db, "upgrade", "head").returncode == 0
    check = alembic(db, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


def test_the_history_query_uses_the_room_index(tmp_path):
    import sqlite3

    db = tmp_path / "plan.db"
    assert alembic(db, "upgrade", "head").returncode == 0
    with sqlite3.connect(db) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT id, text FROM messages WHERE room_id = ? AND id < ? "
            "ORDER BY id DESC LIMIT 50",
            ("general", 10),
        ).fetchall()
    detail = " ".join(row[-1] for row in plan)
    assert "ix_messages_room_id_id" in detail and "TEMP B-TREE" not in detail


def test_the_key_index_holds_keyed_messages_only_and_retries_seek_it(tmp_path):
    import sqlite3

    from app.store import keys_lookup_sql

    db = tmp_path / "keys.db"
    assert alembic(db, "upgrade", "head").returncode == 0
    with sqlite3.connect(db) as conn:
        indexes = {row[1]: row for row in conn.execute("PRAGMA index_list(messages)")}
        plan = conn.execute(f"EXPLAIN QUERY PLAN {keys_lookup_sql(2)}", ("r", "k1", "r", "k2"))
        detail = " ".join(row[-1] for row in plan)
        info = conn.execute("PRAGMA index_info(ix_messages_client_key_room_id)").fetchall()
        columns = [row[2] for row in info]
    _, _, unique, _, partial = indexes["ix_messages_client_key_room_id"]
    assert unique == 1 and partial == 1
    # Led by the key (0009): keys that begin with the time append at one end, whatever the room.
    assert columns == ["client_key", "room_id"] and "ix_messages_room_id_client_key" not in indexes
    assert "SEARCH m USING" in detail and "ix_messages_client_key_room_id" in detail


def test_the_server_creates_the_schema_on_start(start_server, tmp_path):
    start_server()
    assert {"messages", "rooms", "alembic_version"} <= tables(tmp_path / "chat.db")


def test_with_auto_migrate_off_an_unmigrated_database_refuses_to_start(tmp_path):
    srv = ServerProcess(tmp_path, {"CHAT_AUTO_MIGRATE": "0"})
    with pytest.raises(RuntimeError, match="alembic upgrade head"):
        srv.start(timeout=20)
    assert srv.proc is not None and srv.proc.returncode not in (0, None)
    errors = [line for line in srv.log().splitlines() if "ERROR" in line]
    assert len(errors) == 1, srv.log()


def test_with_auto_migrate_off_a_migrated_database_serves(start_server, tmp_path):
    assert alembic(tmp_path / "chat.db", "upgrade", "head").returncode == 0
    srv = start_server({"CHAT_AUTO_MIGRATE": "0"})
    assert srv.health()["status"] == "ok"


async def test_history_survives_a_restart(start_server, tmp_path, room):
    first = start_server()
    async with join(first.ws(room)) as ws:
        await ws.send("kept")
        assert await recv(ws) == "You wrote: kept"
    first.stop()
    second = start_server()
    async with join(second.ws(room)) as ws:
        assert await recv_n(ws, 1) == ["A client says: kept"]
    assert [m["text"] for m in second.messages(room)] == ["kept"]


def test_python_m_app_help_lists_the_settings():
    out = subprocess.run(
        [sys.executable, "-m", "app", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    for name in [
        "CHAT_DATABASE_URL",
        "CHAT_HOST",
        "CHAT_PORT",
        "CHAT_REDIS_URL",
        "CHAT_HISTORY_REPLAY",
        "CHAT_MAX_MESSAGE_BYTES",
        "CHAT_AUTO_MIGRATE",
        "CHAT_ALLOWED_ORIGINS",
        "CHAT_RATE_LIMIT",
        "CHAT_RATE_BURST",
        "CHAT_SEND_QUEUE",
    ]:
        assert name in out
    assert "sqlite+aiosqlite:///./chat.db" in out


def _first_release_database(db: Path) -> list[tuple[object, ...]]:
    """A database as the first release left it (schema 0001) with messages in two rooms."""
    import sqlite3

    assert alembic(db, "upgrade", "0001").returncode == 0
    rows = [
        (1, "general", "hello", "2026-11-24 21:40:00.123456"),
        (2, "other", "héllo wörld", "2026-11-25 08:00:00.000001"),
        (3, "general", "  kept exactly  ", "2026-11-26 12:30:45.500000"),
    ]
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO messages (id, room_id, text, created_at) VALUES (?, ?, ?, ?)", rows
        )
        conn.execute(
            "INSERT INTO rooms VALUES ('general', 2, 3, '2026-11-26 12:30:45.500000'),"
            " ('other', 1, 2, '2026-11-25 08:00:00.000001')"
        )
    return rows


def test_a_first_release_database_upgrades_keeping_every_message(tmp_path):
    import sqlite3

    db = tmp_path / "old.db"
    rows = _first_release_database(db)
    up = alembic(db, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    with sqlite3.connect(db) as conn:
        kept = conn.execute(
            "SELECT id, room_id, text, created_at, author, author_id, client_key FROM messages"
            " ORDER BY id"
        ).fetchall()
    assert kept == [(*row, None, None, None) for row in rows]


def test_each_revision_downgrades_exactly_itself(tmp_path):
    db = tmp_path / "steps.db"
    _first_release_database(db)
    assert alembic(db, "upgrade", "head").returncode == 0
    heads = []
    while (current := alembic(db, "current").stdout.split()) and current[0] != "0001":
        heads.append(current[0])
        down = alembic(db, "downgrade", "-1")
        assert down.returncode == 0, down.stderr
    assert heads, "no revision after 0001"
    up = alembic(db, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    check = alembic(db, "check")
    assert check.returncode == 0, check.stdout + check.stderr


async def test_a_first_release_database_is_served_with_its_messages(start_server, tmp_path):
    rows = _first_release_database(tmp_path / "chat.db")
    srv = start_server()
    listed = srv.messages("general")
    assert [(m["id"], m["text"], m["author"]) for m in listed] == [
        (1, "hello", None),
        (3, "  kept exactly  ", None),
    ]
    assert listed[0]["created_at"] == "2026-11-24T21:40:00.123456Z"
    async with join(srv.ws("general")) as ws:
        assert await recv_n(ws, 2) == ["A client says: hello", "A client says:   kept exactly  "]
        await ws.send("new")
        assert await recv(ws) == "You wrote: new"
    assert srv.messages("general")[-1]["id"] > max(int(str(r[0])) for r in rows)


async def test_a_first_release_database_is_searchable_after_the_upgrade(start_server, tmp_path):
    _first_release_database(tmp_path / "chat.db")
    srv = start_server()
    found = httpx.get(f"{srv.http}/search", params={"q": "HELLO"}).json()
    assert [(m["id"], m["room_id"], m["author"]) for m in found] == [
        (2, "other", None),
        (1, "general", None),
    ]
    found = httpx.get(f"{srv.http}/search", params={"q": "hello world"}).json()
    assert [m["text"] for m in found] == ["héllo wörld"]
    async with join(srv.ws("newer")) as ws:
        await ws.send("hello again")
        assert await recv(ws) == "You wrote: hello again"
    found = httpx.get(f"{srv.http}/search", params={"q": "hello"}).json()
    assert [m["text"] for m in found] == ["hello again", "héllo wörld", "hello"]


def test_the_search_index_downgrades_and_upgrades_with_the_messages(tmp_path):
    import sqlite3

    db = tmp_path / "fts.db"
    _first_release_database(db)
    assert alembic(db, "upgrade", "head").returncode == 0
    assert alembic(db, "downgrade", "0003").returncode == 0
    assert not tables(db) & FTS_TABLES
    with sqlite3.connect(db) as conn:
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall()
        assert triggers == []
        conn.execute("DELETE FROM messages WHERE id = 3")  # while no index exists
    assert alembic(db, "upgrade", "head").returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")
        found = conn.execute(
            "SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'hello OR kept'"
        ).fetchall()
    assert found == [(1,), (2,)]


def _indexed(conn: Any, words: str) -> list[int]:
    found = conn.execute(
        "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid", (words,)
    ).fetchall()
    return [rowid for (rowid,) in found]


def test_a_message_inserted_by_any_writer_is_counted_in_its_room(tmp_path):
    """Migration 0007: the insert trigger keeps the room counts, whoever writes (the server's
    writer, an import with ids older than a room's newest, SQL by hand)."""
    import sqlite3

    db = tmp_path / "trigger.db"
    _first_release_database(db)
    assert alembic(db, "upgrade", "head").returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO messages (room_id, text, created_at) "
            "VALUES ('general', 'newly written', '2026-12-01 10:00:00.000000')"
        )
        for id_, at in ((1000, "2026-12-01 11:00:00.000000"), (500, "2026-11-01 09:00:00.0")):
            conn.execute(
                "INSERT INTO messages (id, room_id, text, created_at) "
                "VALUES (?, 'imported', 'brought over', ?)",
                (id_, at),
            )
        rooms = conn.execute(
            "SELECT room_id, messages, last_message_id, last_message_at FROM rooms ORDER BY room_id"
        ).fetchall()
    assert rooms == [
        ("general", 3, 4, "2026-12-01 10:00:00.000000"),
        ("imported", 2, 1000, "2026-12-01 11:00:00.000000"),  # the older id does not win
        ("other", 1, 2, "2026-11-25 08:00:00.000001"),
    ]


def test_the_search_index_holds_exactly_the_messages_up_to_its_mark(tmp_path):
    """Migration 0008: every message of an upgraded database is indexed (the mark is its newest
    id); one stored above the mark waits for a catch-up, one stored at or below it (an import's
    older id) is indexed at once; a deleted or edited message leaves the index only if it was
    in it (FTS5's own check compares the index with the table). Downgraded to 0007, every
    message is indexed and each new one is indexed as it is stored."""
    import sqlite3

    from app.search_index import catch_up

    db = tmp_path / "mark.db"
    _first_release_database(db)
    assert alembic(db, "upgrade", "head").returncode == 0
    with sqlite3.connect(db, isolation_level=None) as conn:
        assert conn.execute("SELECT indexed_through FROM messages_fts_state").fetchall() == [(3,)]
        assert _indexed(conn, "hello OR kept") == [1, 2, 3]  # héllo folds
        for id_ in (1000, 2000):
            conn.execute(
                "INSERT INTO messages (id, room_id, text, created_at) "
                "VALUES (?, 'general', 'newly written', '2026-12-01 10:00:00.000000')",
                (id_,),
            )
        assert _indexed(conn, "newly") == []  # above the mark: not yet
        assert catch_up(1000, conn) == (1003, 2000)  # a slice: ids at most 1,000 above it
        assert _indexed(conn, "newly") == [1000]
        conn.execute(
            "INSERT INTO messages (id, room_id, text, created_at) "
            "VALUES (500, 'imported', 'brought over', '2026-11-01 09:00:00.000000')"
        )
        assert _indexed(conn, "brought") == [500]  # at or below the mark: at once
        conn.execute("DELETE FROM messages WHERE id IN (3, 2000)")  # one indexed, one not
        conn.execute("UPDATE messages SET text = 'hello edited' WHERE id = 1")
        assert _indexed(conn, "newly OR kept OR edited") == [1, 1000]
        assert catch_up(1500, conn) == (1003, 1000)  # 2000 is gone: nothing to add
        # Current again: FTS5 compares its index with the table, row by row.
        conn.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
        conn.execute(
            "INSERT INTO messages (id, room_id, text, created_at) "
            "VALUES (3000, 'general', 'left behind', '2026-12-01 12:00:00.000000')"
        )
        conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")
    assert alembic(db, "downgrade", "0007").returncode == 0
    with sqlite3.connect(db) as conn:
        assert _indexed(conn, "behind") == [3000]  # the downgrade indexed what was above
        conn.execute(
            "INSERT INTO messages (room_id, text, created_at) "
            "VALUES ('general', 'after the downgrade', '2026-12-01 13:00:00.000000')"
        )
        assert _indexed(conn, "downgrade") == [3001]
        conn.execute("DELETE FROM messages WHERE id = 3000")
        conn.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall()
    assert sorted(triggers) == [
        ("messages_after_insert",),
        ("messages_fts_delete",),
        ("messages_fts_update",),
    ]
    assert "messages_fts_state" not in tables(db)
    assert alembic(db, "downgrade", "0006").returncode == 0
    with sqlite3.connect(db) as conn:
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall()
    assert sorted(triggers) == [("messages_fts_delete",), ("messages_fts_update",)]
