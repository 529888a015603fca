"""The real PostgreSQL and Redis of shared/SERVICES.md, for the tests marked `services`.

A pytest plugin (loaded by conftest.py): each run gets its own PostgreSQL database, dropped
afterwards, and its own Redis channel prefix. A service that does not answer skips the tests
that need it, or fails them when CHAT_REQUIRE_SERVICES=1 (as `.ci/run` sets).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
import redis

from tests.support import free_port

# Where the services are (shared/SERVICES.md); overridable for machines that differ.
PG_HOST = os.environ.get("CHAT_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CHAT_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("CHAT_TEST_PG_USER", "root")
REDIS_URL = os.environ.get("CHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def missing(reason: str) -> None:
    """Skip, or fail when the services are required."""
    if os.environ.get("CHAT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (CHAT_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


def pg_url(database: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=3
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def new_database() -> Iterator[str]:
    """A uniquely named PostgreSQL database, dropped on exit."""
    name = f"chat_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        missing(f"PostgreSQL does not answer on {PG_HOST}:{PG_PORT} as {PG_USER}: {exc}")
    try:
        yield pg_url(name)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """This test run's PostgreSQL database."""
    with new_database() as url:
        yield url


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A database of one test's own (for tests that need an empty schema)."""
    with new_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=3, socket_connect_timeout=3).ping()
    except (redis.RedisError, OSError) as exc:
        missing(f"Redis does not answer at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture(scope="session")
def channel_prefix() -> str:
    """Channels of this run only, so that parallel runs on one Redis do not hear each other."""
    return f"chattest-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def services_env(postgres_url: str, redis_url: str, channel_prefix: str) -> dict[str, str]:
    """Server settings for PostgreSQL storage and Redis fan-out (rate limit off)."""
    return {
        "CHAT_DATABASE_URL": postgres_url,
        "CHAT_REDIS_URL": redis_url,
        "CHAT_REDIS_CHANNEL_PREFIX": channel_prefix,
        "CHAT_RATE_LIMIT": "0",
    }


class RedisServer:
    """A private redis-server on a free port, which a test may stop and start again."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
        ]
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return self
            except (redis.RedisError, OSError):
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """Redis that this test owns: stopping it disturbs no other test."""
    if shutil.which("redis-server") is None:
        missing("redis-server is not installed")
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def kill_subscribers(url: str, prefix: str) -> int:
    """Cut the subscriber connections of the servers using `prefix` (as a Redis restart would)."""
    client = redis.Redis.from_url(url)
    ids = [
        c["id"]
        for c in client.client_list(_type="pubsub")
        if c.get("name", "").startswith(f"{prefix}:subscriber:")
    ]
    for client_id in ids:
        client.client_kill_filter(_id=client_id)
    return len(ids)
