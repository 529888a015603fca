"""The store's recognition of client keys, batch by batch, on both databases.

A unit-level check under the protocol tests (tests/test_exactly_once.py): which message of a
batch got which id when some of its keyed rows were skipped by ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.db import create_engine
from app.schema import prepare_schema
from app.store import NewMessage, Store, Written

pytestmark = pytest.mark.anyio


def message(text: str, key: str | None = None, room: str = "r", sender: str = "s") -> NewMessage:
    return NewMessage(room, text, datetime.now(UTC), sender=sender, key=key)


async def insert(store: Store, batch: list[NewMessage], then=None) -> Written:
    """One batch as the writer writes it: locked, inserted, committed, new messages handed on."""
    async with store.locked(m.room_id for m in batch) as tx:
        written = await tx.insert(batch)
        await tx.commit()
        if then is not None and written.stored:  # the writer publishes only new messages
            await then(written.stored)
    return written


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


async def test_skipped_rows_leave_every_other_message_its_own_id(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await prepare_schema(engine, auto_migrate=True)
        store = Store(engine)
        first = await insert(store, [message("a", "ka"), message("b", "kb")])
        assert first.repeats == []
        ka, kb = first.stored
        handed_on = []

        async def then(stored):
            handed_on.append(stored)

        batch = [
            message("plain 1"),
            message("retry of a, edited", "ka", sender="t"),
            message("c", "kc"),
            message("c again", "kc", sender="u"),
            message("plain 2"),
            message("b once more", "kb"),
            message("same key, other room", "ka", room="elsewhere"),
        ]
        written = await insert(store, batch, then=then)
        new = written.stored
        assert [m.text for m in new] == ["plain 1", "c", "plain 2", "same key, other room"]
        assert [m.id for m in new] == sorted(m.id for m in new) and new[0].id > kb.id
        assert handed_on == [new]  # only new messages are published
        repeats = {position: m for position, m in written.repeats}
        assert sorted(repeats) == [1, 3, 5]
        assert (repeats[1].id, repeats[1].text, repeats[1].sender) == (ka.id, "a", "t")
        assert repeats[1].created_at == ka.created_at and repeats[1].key == "ka"
        assert (repeats[3].id, repeats[3].text, repeats[3].sender) == (new[1].id, "c", "u")
        assert repeats[5].id == kb.id
        page = await store.page("r", limit=100)
        assert [m.text for m in page] == ["a", "b", "plain 1", "c", "plain 2"]
        assert [m.id for m in page] == [ka.id, kb.id, new[0].id, new[1].id, new[2].id]
        rooms = {r.room_id: r.messages for r in await store.rooms(limit=10)}
        assert rooms == {"r": 5, "elsewhere": 1}
    finally:
        await engine.dispose()


async def test_a_batch_of_nothing_but_retries_publishes_nothing(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await prepare_schema(engine, auto_migrate=True)
        store = Store(engine)
        [stored] = (await insert(store, [message("x", "k")])).stored
        handed_on = []

        async def then(messages):
            handed_on.append(messages)

        written = await insert(store, [message("x", "k") for _ in range(3)], then=then)
        assert written.stored == [] and handed_on == []
        assert [m.id for _, m in written.repeats] == [stored.id] * 3
    finally:
        await engine.dispose()
