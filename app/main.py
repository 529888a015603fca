"""The ASGI application: `create_app(settings)` and the lifespan that builds and closes it all."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator

from app import heap, metrics, sqlite_guard
from app.broker import make_broker
from app.chat import Chat
from app.db import create_engine
from app.hub import Hub
from app.retention import Retention
from app.routes import metrics as metrics_route
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
            hub = Hub(probe_fanout=settings.metrics)
            broker = make_broker(settings.redis_url, channel_prefix=settings.redis_channel_prefix)
            writer = Writer(
                store, broker.publish, batch_max=settings.write_batch, chained=broker.chained
            )
            chat = Chat(settings, store, writer, hub, broker)
            await broker.start(hub.deliver, hub.lost, store.between)
            writer.start()
            retention = _start_retention(store, settings)
            app.state.chat = chat
            sampling = _start_metrics(app, chat) if settings.metrics else None
            restore_signals = drain_before_exit(chat.drain)
            heap.settle_after_startup()
            log.info("chat ready on %s", engine.url.render_as_string(hide_password=True))
            try:
                yield
            finally:
                restore_signals()
                heap.unsettle_at_shutdown()
                await chat.drain()
                if retention is not None:
                    await retention.stop()
                await writer.stop(grace=0.5)
                await broker.close()
                await store.close()
                if sampling is not None:
                    sampling.cancel()
                metrics.process_ended()
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
    if settings.metrics:
        app.include_router(metrics_route.router)
        Instrumentator(should_group_status_codes=False).add(metrics.HTTP).instrument(app)
    app.mount("/static", pages.static_files, name="static")
    return app


def _start_retention(store: Store, settings: Settings) -> Retention | None:
    if not settings.retention_days:
        return None
    retention = Retention(store, days=settings.retention_days, interval=settings.retention_interval)
    retention.start()
    return retention


def _start_metrics(app: FastAPI, chat: Chat) -> asyncio.Task[None] | None:
    """Gauges are sampled at scrape time; with several processes also every second, since a
    scrape may reach another process."""
    app.state.sampler = sampler = metrics.Sampler(chat)
    if not metrics.multiprocess_dir():
        return None
    return asyncio.create_task(sampler.every(metrics.SAMPLE_EVERY), name="metrics-sampler")


app = create_app()
