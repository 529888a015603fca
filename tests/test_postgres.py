"""The contract suite once more, on PostgreSQL storage with Redis fan-out; and the migrations.

The room, REST and exactly-once tests are imported here and collected a second time, with the
`server` fixture replaced by a server on this run's PostgreSQL database and Redis channels: the
same assertions, the other backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from tests.clients import closed_with, join, recv
from tests.support import ROOT, ServerProcess, unique_room
from tests.test_bad_input import (  # noqa: F401  (PostgreSQL is the database that cannot store it)
    test_text_holding_u0000_is_closed_with_1007_and_nothing_is_stored,
)
from tests.test_exactly_once import (  # noqa: F401  (chat.v2.json: retries through Redis too)
    test_a_hundred_concurrent_retries_of_one_key_store_one_row,
    test_a_key_resent_on_a_new_connection_gets_the_stored_message,
    test_a_key_resent_on_the_same_connection_is_stored_once,
    test_a_send_frame_is_stored_and_echoed_with_its_key_to_the_sender_only,
    test_keys_never_reach_rest,
    test_retries_in_one_batch_store_one_row,
    test_the_same_key_in_two_rooms_is_two_messages,
    test_two_connections_sending_one_key_at_once_store_it_once,
    test_unkeyed_sends_are_stored_every_time,
)
from tests.test_rest import *  # noqa: F403
from tests.test_rooms import *  # noqa: F403

pytestmark = [pytest.mark.anyio, pytest.mark.services]

# These check settings and fault injection, not storage, and each starts a server of its own
# (seconds each): they run once, on SQLite.
for _name in (
    "test_replay_count_follows_the_setting",
    "test_replay_zero_sends_no_history",
    "test_a_message_committed_during_the_join_reaches_the_joiner_once",
    "test_healthz_is_503_when_the_database_does_not_answer",
):
    del globals()[_name]


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, services_env: dict[str, str]
) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("pg-server"),
        services_env,
        database_url=services_env["CHAT_DATABASE_URL"],
    ).start()
    yield proc
    proc.stop()


def alembic(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        env={**os.environ, "CHAT_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )


def pg_tables(url: str) -> set[str]:
    async def query() -> set[str]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        finally:
            await conn.close()
        return {row["tablename"] for row in rows}

    return asyncio.run(query())


def test_postgres_upgrade_head_check_and_downgrade_base(fresh_postgres_url: str) -> None:
    up = alembic(fresh_postgres_url, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert pg_tables(fresh_postgres_url) == {"alembic_version", "messages", "rooms"}
    check = alembic(fresh_postgres_url, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr
    down = alembic(fresh_postgres_url, "downgrade", "base")
    assert down.returncode == 0, down.stderr
    assert pg_tables(fresh_postgres_url) == {"alembic_version"}


@contextlib.asynccontextmanager
async def room_lock_held(database_url: str, room_id: str) -> AsyncIterator[None]:
    """A separate session holding the room's advisory lock (a stalled process elsewhere)."""
    url = database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", room_id)
        yield
    finally:
        await conn.close()


async def test_a_room_locked_elsewhere_fails_only_its_own_messages_within_the_bound(
    server: ServerProcess,
) -> None:
    stuck, flowing = unique_room("stuck"), unique_room("flowing")
    async with (
        join(server.ws(stuck)) as blocked,
        join(server.ws(flowing)) as sender,
        join(server.ws(flowing)) as watcher,
    ):
        async with room_lock_held(server.database_url, stuck):
            started = time.monotonic()
            await blocked.send("into the stuck room")

            async def told() -> tuple[int | None, float]:
                code = await closed_with(blocked)
                return code, time.monotonic() - started

            refusal = asyncio.create_task(told())
            for i in range(20):
                await sender.send(f"flows {i}")
                assert await recv(sender) == f"You wrote: flows {i}"
                assert await recv(watcher) == f"A client says: flows {i}"
                await asyncio.sleep(0.1)
            code, after = await refusal
            assert code == 1011
            assert after < 2.0 + 5.0  # the bound, and a loaded machine
        async with join(server.ws(stuck)) as again:  # the lock is free again
            await again.send("after")
            assert await recv(again) == "You wrote: after"
    assert [m["text"] for m in server.messages(stuck)] == ["after"]
    assert len(server.messages(flowing)) == 20
