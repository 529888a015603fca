"""Fixtures: a real server process on a free port, and a factory for servers of one test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from app.db import create_engine
from app.schema import prepare_schema
from app.store import Store
from tests.browser_support import browser, open_page  # noqa: F401  (the browser tests' fixtures)
from tests.services import (  # noqa: F401  (fixtures of the tests marked `services`)
    channel_prefix,
    fresh_postgres_url,
    postgres_url,
    private_redis,
    redis_url,
    services_env,
)
from tests.support import ServerProcess, unique_room

StartServer = Callable[..., ServerProcess]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the tests that only need the contract's defaults (rate limit off)."""
    proc = ServerProcess(tmp_path_factory.mktemp("server"), {"CHAT_RATE_LIMIT": "0"}).start()
    yield proc
    proc.stop()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start servers with their own settings; they are stopped when the test ends."""
    started: list[ServerProcess] = []

    def start(env: dict[str, str] | None = None, **kwargs: object) -> ServerProcess:
        workdir = kwargs.pop("workdir", None) or tmp_path
        proc = ServerProcess(workdir, env, **kwargs).start()  # type: ignore[arg-type]
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def room() -> str:
    return unique_room()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """The store of a new SQLite file in `tmp_path` (chat.db), migrated; closed after."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
    await prepare_schema(engine, auto_migrate=True)
    store = Store(engine)
    yield store
    await store.close()
    await engine.dispose()
