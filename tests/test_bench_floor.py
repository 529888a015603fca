"""bench/floor.py stores what it times: each writer's rows are in its file afterwards, and the
project's kind is the project's own writer (its room counts and search index kept)."""

import sqlite3

import pytest

from bench import floor


@pytest.mark.parametrize("kind", floor.KINDS)
def test_each_writer_stores_every_message(kind: str, tmp_path) -> None:
    path = tmp_path / f"{kind}.db"
    figure = floor.measure(kind, path, size=7, commits=3, seed=1200)
    assert figure > 0
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (1200 + 21,)
        if kind != "floor":
            found = db.execute(
                "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'sender'"
            ).fetchone()[0]
            # floor+search indexes every batch; the project's index follows once BATCH (500)
            # rows are behind: after the seed's first 1,000, not the 221 since
            assert found == (1221 if kind == "floor+search" else 1000)
        if kind == "project":
            (counted,) = db.execute("SELECT sum(messages) FROM rooms").fetchone()
            assert counted == 1221
