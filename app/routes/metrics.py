"""`GET /metrics`: the Prometheus text exposition (only when CHAT_METRICS is on)."""

import asyncio

from fastapi import APIRouter, Request, Response

from app import metrics

router = APIRouter()

TEXT = {
    200: {
        "description": "Prometheus text exposition format",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


@router.get("/metrics", response_class=Response, responses=TEXT, tags=["operations"])
async def prometheus_metrics(request: Request) -> Response:
    """Every metric of the server (all processes, with `--workers N`), for Prometheus."""
    sampler: metrics.Sampler | None = getattr(request.app.state, "sampler", None)
    if sampler is not None:
        sampler.sample()
    body, content_type = await asyncio.to_thread(metrics.exposition)
    return Response(body, media_type=content_type)
