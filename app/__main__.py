"""`python -m app`: serve the chat with uvicorn, settings from CHAT_* variables and flags."""

import argparse
import asyncio
import importlib
import logging
import logging.config
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable

import uvicorn
from pydantic import ValidationError

from app import token_command
from app.client_frames import max_frame_bytes
from app.logs import log_config
from app.settings import Settings, bounds, settings_error, variable

log = logging.getLogger("app")

APP = "app.main:app"  # what uvicorn serves


def _settings_help() -> str:
    lines = ["settings (environment variables; --host, --port and --log-level override theirs):"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = (
            "unset"
            if default is None
            else str(int(default) if isinstance(default, bool) else default)
        )
        limits = bounds(field)
        lines.append(
            f"  {variable(name):<28} {field.description} "
            f"(default: {shown}{'; ' + limits if limits else ''})"
        )
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


def _schema_problem(settings: Settings) -> str | None:
    """Migrate (or check) the schema; what is wrong with it, if anything. Imported here: a
    start refused for its settings does not wait for alembic's import."""
    from app.schema import SchemaNotReady

    try:
        asyncio.run(_check_schema(settings))
    except SchemaNotReady as exc:
        return str(exc)
    return None


async def _check_schema(settings: Settings) -> None:
    from app.cli import open_engine
    from app.schema import prepare_schema

    engine = open_engine(settings)
    try:
        await prepare_schema(engine, auto_migrate=settings.auto_migrate)
    finally:
        await engine.dispose()


def _workers_problem(settings: Settings) -> str | None:
    from app.db import is_sqlite

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


def _later(module: str) -> Callable[[list[str]], int]:
    """A subcommand's `main`, imported when it runs: the database commands bring SQLAlchemy and
    Alembic, which a server start refused for its settings should not wait for."""

    def main(argv: list[str]) -> int:
        return importlib.import_module(module).main(argv)  # type: ignore[no-any-return]

    return main


# Subcommands: `python -m app NAME ...`; anything else serves the chat.
COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "token": token_command.main,
    "export": _later("app.export_command"),
    "import": _later("app.import_command"),
    "prune": _later("app.prune_command"),
}


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
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        # No traceback: one line that names the variable to fix.
        logging.config.dictConfig(log_config("info", os.environ.get("CHAT_LOG_FORMAT", "text")))
        log.error("%s", settings_error(exc))
        return 2
    logging.config.dictConfig(log_config(settings.log_level, settings.log_format))
    if args.workers > 1 and (problem := _workers_problem(settings)):
        log.error("--workers %d %s", args.workers, problem)
        return 2
    # Migrate (or check) once, before any worker starts, so that one line says what is wrong.
    from app import sqlite_guard  # imported here, as the schema's modules are

    try:
        sqlite_guard.claim(settings.database_url)  # held on by the server in this process
    except sqlite_guard.AlreadyServed as exc:
        log.error("%s", exc)
        return 1
    if problem := _schema_problem(settings):
        log.error("%s", problem)
        return 1
    for name, value in overrides.items():
        os.environ[f"CHAT_{name.upper()}"] = str(value)
    if args.workers > 1:
        os.environ["CHAT_AUTO_MIGRATE"] = "0"  # done above: workers must not race to migrate
    metrics_dir = _shared_metrics_dir() if args.workers > 1 and settings.metrics else None
    # uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown: let that end in exit 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        uvicorn.run(
            APP,
            host=settings.host,
            port=settings.port,
            workers=args.workers if args.workers > 1 else None,
            ws="app.protocol:ChatWebSocketProtocol",
            ws_max_size=max_frame_bytes(settings.max_message_bytes),
            ws_per_message_deflate=False,
            log_config=log_config(settings.log_level, settings.log_format),
            log_level=settings.log_level.lower(),
            # After the drain (app/shutdown.py, at most 7 s) every socket is closed: uvicorn's
            # own shutdown has little left to wait for, and the exit comes within 10 s.
            timeout_graceful_shutdown=2,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _shared_metrics_dir() -> str | None:
    """Workers write their metrics to files in a fresh directory, so that any of them answers
    `/metrics` for all (prometheus-client's multiprocess mode). An operator's own directory is
    kept (and not removed)."""
    from app.metrics import MULTIPROC_DIR

    if os.environ.get(MULTIPROC_DIR):
        return None
    path = tempfile.mkdtemp(prefix="chat-metrics-")
    os.environ[MULTIPROC_DIR] = path
    return path


if __name__ == "__main__":
    sys.exit(main())
