"""The schema is Alembic's: bring it to head on start, or check that someone else did."""

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"


class SchemaNotReady(RuntimeError):
    pass


def alembic_config() -> Config:
    # No ini file: the app's logging stays as uvicorn configured it.
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


# Any constant will do: it only has to be the same for every process of every version.
_MIGRATION_LOCK = 0x63686174  # "chat"


async def prepare_schema(engine: AsyncEngine, *, auto_migrate: bool) -> None:
    if auto_migrate:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Several processes may start at once (`uvicorn --workers`, several hosts): one
                # migrates, the others wait and then find the schema at head.
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            await conn.run_sync(_upgrade)
        return
    async with engine.connect() as conn:
        current = await conn.run_sync(_current_revision)
    head = head_revision()
    if current != head:
        raise SchemaNotReady(
            f"the database schema is at revision {current or 'none'}, not {head}: "
            "run `alembic upgrade head` (or start with CHAT_AUTO_MIGRATE=1)"
        )


def _upgrade(connection: Any) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current_revision(connection: Any) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
