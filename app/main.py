"""The ASGI application: `create_app(settings)` and the lifespan that builds and closes it all."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import sqlite_guard
from app.broker import make_broker
from app.chat import Chat
from app.db import create_engine
from app.hub import Hub
from app.routes import pages, router
from app.routes.access import document_access
from app.schema import prepare_schema
from app.security_headers import SecurityHeaders
from app.settings import Settings
from app.shutdown import drain_before_exit
from app.store import Store
from app.writer import Writer

log = logging.getLogger("app")


def create_app(settings: Settings | None = None, *, store_factory: type[Store] = Store) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            settings.database_url,
            sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            sqlite_synchronous=settings.sqlite_synchronous,
        )
        try:
            sqlite_guard.claim(settings.database_url)
            await prepare_schema(engine, auto_migrate=settings.auto_migrate)
            store = store_factory(engine)
            hub = Hub()
            broker = make_broker(settings.redis_url, channel_prefix=settings.redis_channel_prefix)
            writer = Writer(
                store, broker.publish, batch_max=settings.write_batch, chained=broker.chained
            )
            chat = Chat(settings, store, writer, hub, broker)
            await broker.start(hub.deliver, hub.lost, store.between)
            writer.start()
            app.state.chat = chat
            restore_signals = drain_before_exit(chat.drain)
            log.info("chat ready on %s", engine.url.render_as_string(hide_password=True))
            try:
                yield
            finally:
                restore_signals()
                await chat.drain()
                await writer.stop(grace=0.5)
                await broker.close()
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Persistent chat",
        summary="WebSocket rooms whose every message is stored, replayed and listed.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_middleware(SecurityHeaders)
    app.include_router(router)
    document_access(app, settings.access)
    app.mount("/static", pages.static_files, name="static")
    return app


app = create_app()
