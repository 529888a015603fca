"""Reading a server's `/metrics` through prometheus-client's own parser."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ServerProcess

Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]

CONTRACT = (
    "chat_connections",
    "chat_messages_stored_total",
    "chat_commit_batch_size_bucket",
    "chat_commit_seconds_bucket",
    "chat_frames_sent_total",
    "chat_closes_total",
    "chat_writer_queue",
    "http_requests_total",
)


def scrape(server: ServerProcess) -> Samples:
    response = httpx.get(f"{server.http}/metrics", timeout=10.0)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 for a labelled child that was never counted."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for_metric(
    server: ServerProcess,
    name: str,
    done: Callable[[float], bool],
    timeout: float = 15.0,
    **labels: str,
) -> float:
    """Scrape until `done(value)`; the last value (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    while True:
        current = value(scrape(server), name, **labels)
        if done(current) or time.monotonic() > deadline:
            return current
        time.sleep(0.1)
