"""`GET /metrics`: Prometheus exposition with the contract's names, whose values follow a known
workload; `CHAT_METRICS=0` turns it off."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest

from tests.clients import closed_with, history, join, join_json, recv, recv_n
from tests.metrics_support import CONTRACT, scrape, value, wait_for_metric
from tests.support import ROOT, ServerProcess

pytestmark = pytest.mark.anyio


def test_metrics_parse_as_prometheus_text_with_the_contracts_names(server: ServerProcess):
    httpx.get(f"{server.http}/rooms").raise_for_status()
    samples = scrape(server)
    names = {name for name, _ in samples}
    assert set(CONTRACT) <= names
    assert any(name == "chat_closes_total" and dict(labels).keys() == {"code"}
               for name, labels in samples)  # fmt: skip
    http = [dict(labels) for name, labels in samples if name == "http_requests_total"]
    assert {"handler": "/rooms", "method": "GET", "status": "200"} in http


async def test_n_messages_move_the_stored_and_sent_counters_by_n(start_server, room):
    srv = start_server({"CHAT_RATE_LIMIT": "0"})
    n = 25
    before = scrape(srv)
    async with join(srv.ws(room)) as sender, join_json(srv.ws(room)) as reader:
        await history(reader)
        assert await asyncio.to_thread(wait_for_metric, srv, "chat_connections", lambda v: v == 2)
        assert value(scrape(srv), "chat_connections") == 2
        for i in range(n):
            await sender.send(f"m{i}")
        assert await recv_n(sender, n) == [f"You wrote: m{i}" for i in range(n)]
        for _ in range(n):
            await recv(reader)
        after = scrape(srv)

    def moved(name: str) -> float:
        return value(after, name) - value(before, name)

    assert moved("chat_messages_stored_total") == n
    assert moved("chat_commit_batch_size_sum") == n
    assert value(after, "chat_commit_seconds_count") >= 1
    # Both clients got every message; the JSON one also its history_end frame.
    assert moved("chat_frames_sent_total") == 2 * n + 1
    assert moved("chat_join_seconds_count") == 2
    assert value(after, "chat_fanout_seconds_count") >= 1
    gone = await asyncio.to_thread(wait_for_metric, srv, "chat_connections", lambda v: v == 0)
    assert gone == 0
    await asyncio.to_thread(srv.messages, room)
    samples = scrape(srv)
    assert value(
        samples, "http_requests_total", handler="/rooms/{room_id}/messages", method="GET",
        status="200",
    ) == 1  # fmt: skip


async def test_a_slow_reader_closed_with_1013_counts_one_1013_close(start_server, room):
    srv = start_server(
        {"CHAT_RATE_LIMIT": "0", "CHAT_SEND_QUEUE": "5", "CHAT_MAX_MESSAGE_BYTES": "65536"}
    )
    before = value(scrape(srv), "chat_closes_total", code="1013")
    async with join(srv.ws(room)) as slow, join(srv.ws(room)) as sender:
        slow.transport.pause_reading()  # the kernel's buffers fill, then its queue: 1013
        text = "x" * 60_000
        for _ in range(400):
            await sender.send(text)
            await recv(sender)
            if value(scrape(srv), "chat_closes_total", code="1013") > before:
                break
        slow.transport.resume_reading()
        assert await closed_with(slow) == 1013
    assert value(scrape(srv), "chat_closes_total", code="1013") == before + 1


async def test_a_binary_frame_counts_a_1003_close(start_server, room):
    srv = start_server({"CHAT_RATE_LIMIT": "0"})
    async with join(srv.ws(room)) as ws:
        await ws.send(b"\x00")
        assert await closed_with(ws) == 1003
    assert value(scrape(srv), "chat_closes_total", code="1003") == 1


def test_metrics_off_answers_404_and_leaves_the_api_document(start_server):
    srv = start_server({"CHAT_METRICS": "0"})
    response = httpx.get(f"{srv.http}/metrics")
    assert response.status_code == 404
    assert "/metrics" not in httpx.get(f"{srv.http}/openapi.json").json()["paths"]


def test_metrics_are_documented_as_text_in_the_api_document(server: ServerProcess):
    operation = httpx.get(f"{server.http}/openapi.json").json()["paths"]["/metrics"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"text/plain"}


def test_the_dashboard_and_the_readme_ask_only_for_metrics_the_server_has(server: ServerProcess):
    httpx.get(f"{server.http}/rooms").raise_for_status()
    names = {name for name, _ in scrape(server)}
    names.add("chat_broker_link_up")  # only with Redis (checked in test_multiprocess.py)
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    asked = {m for expr in exprs for m in re.findall(r"\b(?:chat|http)_[a-z_]+", expr)}
    assert asked and asked <= names, asked - names
    readme = (ROOT / "README.md").read_text()
    alerts = readme.split("**Alerts worth setting**")[1].split("###")[0]
    asked = set(re.findall(r"\b(?:chat|http)_[a-z_]+", alerts))
    assert asked and asked <= names, asked - names
