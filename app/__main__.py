"""`python -m app`: serve the chat with uvicorn, settings from CHAT_* variables and flags."""

import argparse
import asyncio
import logging
import logging.config
import os
import signal
import sys

import uvicorn

from app import sqlite_guard, token_command
from app.client_frames import max_frame_bytes
from app.db import create_engine, is_sqlite
from app.logs import log_config
from app.schema import SchemaNotReady, prepare_schema
from app.settings import Settings

log = logging.getLogger("app")

APP = "app.main:app"  # what uvicorn serves


def _settings_help() -> str:
    lines = ["settings (environment variables, flags override the first four):"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = (
            "unset"
            if default is None
            else str(int(default) if isinstance(default, bool) else default)
        )
        lines.append(f"  CHAT_{name.upper():<26} {field.description} (default: {shown})")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Serve the persistent chat.",
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="listen address (CHAT_HOST)")
    parser.add_argument("--port", type=int, help="listen port (CHAT_PORT)")
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes (needs CHAT_REDIS_URL when > 1)"
    )
    parser.add_argument("--log-level", help="debug, info, warning, error (CHAT_LOG_LEVEL)")
    return parser.parse_args(argv)


async def _check_schema(settings: Settings) -> None:
    engine = create_engine(
        settings.database_url,
        sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        sqlite_synchronous=settings.sqlite_synchronous,
    )
    try:
        await prepare_schema(engine, auto_migrate=settings.auto_migrate)
    finally:
        await engine.dispose()


def _workers_problem(settings: Settings) -> str | None:
    if not settings.redis_url:
        return "needs CHAT_REDIS_URL: without Redis each process would only see its own clients"
    if is_sqlite(settings.database_url):
        # SQLite has no lock that outlives a commit until the publish: rooms could be seen
        # in different orders by different processes.
        return (
            "needs PostgreSQL (CHAT_DATABASE_URL=postgresql+asyncpg://...): with SQLite the "
            "processes cannot keep one order per room"
        )
    return None


# Subcommands: `python -m app NAME ...`; anything else serves the chat.
COMMANDS = {"token": token_command.main}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    args = parse_args(argv)
    overrides = {
        k: v
        for k, v in {"host": args.host, "port": args.port, "log_level": args.log_level}.items()
        if v is not None
    }
    settings = Settings(**overrides)
    logging.config.dictConfig(log_config(settings.log_level))
    if args.workers > 1 and (problem := _workers_problem(settings)):
        log.error("--workers %d %s", args.workers, problem)
        return 2
    # Migrate (or check) once, before any worker starts, so that one line says what is wrong.
    try:
        sqlite_guard.claim(settings.database_url)  # held on by the server in this process
        asyncio.run(_check_schema(settings))
    except (SchemaNotReady, sqlite_guard.AlreadyServed) as exc:
        log.error("%s", exc)
        return 1
    for name, value in overrides.items():
        os.environ[f"CHAT_{name.upper()}"] = str(value)
    if args.workers > 1:
        os.environ["CHAT_AUTO_MIGRATE"] = "0"  # done above: workers must not race to migrate
    # uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown: let that end in exit 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    uvicorn.run(
        APP,
        host=settings.host,
        port=settings.port,
        workers=args.workers if args.workers > 1 else None,
        ws="app.protocol:ChatWebSocketProtocol",
        ws_max_size=max_frame_bytes(settings.max_message_bytes),
        ws_per_message_deflate=False,
        log_config=log_config(settings.log_level),
        log_level=settings.log_level.lower(),
        # After the drain (app/shutdown.py, at most 7 s) every socket is closed: uvicorn's own
        # shutdown has little left to wait for, and the exit comes within the contract's 10 s.
        timeout_graceful_shutdown=2,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
