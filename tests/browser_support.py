"""Debian's Chromium driven by Playwright (shared/BROWSER.md): where it is, how it is launched."""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import pytest
from websockets.sync.client import connect
from websockets.typing import Subprotocol

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The browser to drive, or a skip with the reason (a failure where CI requires it)."""
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    found = shutil.which(path)
    if found is None:
        _unavailable(f"no Chromium at {path} (set CHROMIUM_PATH, or apt-get install chromium)")
    return found  # type: ignore[return-value]


def _unavailable(reason: str) -> None:
    if os.environ.get("CHAT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"CHAT_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def post(ws_url: str, texts: list[str]) -> list[dict[str, Any]]:
    """Send `texts` from a JSON client of the room; the stored messages, once all are echoed."""
    echoed: list[dict[str, Any]] = []
    with connect(ws_url, subprotocols=[Subprotocol("chat.v1.json")], open_timeout=10) as ws:
        for text in texts:
            ws.send(text)
        while len(echoed) < len(texts):
            frame = json.loads(ws.recv(timeout=10))
            if frame["type"] == "message" and frame["own"]:
                echoed.append(frame)
    return echoed
