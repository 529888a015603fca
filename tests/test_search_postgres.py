"""The search suite once more on PostgreSQL: the same cases must give the same answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest

from tests.support import ServerProcess
from tests.test_postgres import alembic
from tests.test_search import *  # noqa: F403
from tests.test_search import search

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, services_env: dict[str, str]
) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("pg-search"),
        services_env,
        database_url=services_env["CHAT_DATABASE_URL"],
    ).start()
    yield proc
    proc.stop()


def _pg(url: str, sql: str, *args: object) -> list[tuple]:
    async def run() -> list[tuple]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            return [tuple(row) for row in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


SEARCH_OBJECTS = """
SELECT (SELECT count(*) FROM information_schema.columns WHERE column_name = 'search_vector'),
       (SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_messages_search_vector'),
       (SELECT count(*) FROM pg_proc WHERE proname LIKE 'chat_search%')
"""


def test_a_first_release_database_is_indexed_by_the_upgrade_and_downgrade_removes_it(
    fresh_postgres_url: str, tmp_path
) -> None:
    url = fresh_postgres_url
    assert alembic(url, "upgrade", "0001").returncode == 0
    _pg(
        url,
        "INSERT INTO messages (id, room_id, text, created_at) VALUES "
        "(1, 'general', 'Crème brûlée', now()), (2, 'other', 'see foo.png', now())",
    )
    up = alembic(url, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert _pg(url, SEARCH_OBJECTS) == [(1, 1, 4)]
    srv = ServerProcess(tmp_path, {"CHAT_AUTO_MIGRATE": "0"}, database_url=url).start()
    try:
        assert [m["id"] for m in search(srv, "CREME brulee")] == [1]
        assert [m["id"] for m in search(srv, '"foo.png"')] == [2]
    finally:
        srv.stop()
    down = alembic(url, "downgrade", "0003")  # below the search index (0004)
    assert down.returncode == 0, down.stderr
    assert _pg(url, SEARCH_OBJECTS) == [(0, 0, 0)]
    assert _pg(url, "SELECT id, text FROM messages ORDER BY id") == [
        (1, "Crème brûlée"),
        (2, "see foo.png"),
    ]
    assert alembic(url, "upgrade", "head").returncode == 0
    check = alembic(url, "check")
    assert check.returncode == 0, check.stdout + check.stderr
