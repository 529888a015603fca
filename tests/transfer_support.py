"""Export and import as an operator runs them: `python -m app export|import` as child processes,
and message files written the way an export writes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.sync.client import connect

from tests.support import ROOT, ServerProcess

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# Texts an export must carry byte for byte: quotes, backslashes, newlines, other scripts.
SAMPLES = ['say "hi"', "back\\slash", "two\nlines", "tab\there", "Café ☃ 你好 🎉", "  padded  "]


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def run_app(
    database_url: str, *args: str, stdin: bytes | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python -m app ARGS` on `database_url`; stdout and stderr as text."""
    env = {**os.environ, "CHAT_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=timeout,
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def export(database_url: str, *args: str) -> bytes:
    """The export's NDJSON (to stdout), after checking that it succeeded quietly."""
    env = {**os.environ, "CHAT_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "app", "export", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""  # no progress line when stderr is not a terminal
    return result.stdout


def import_file(database_url: str, path: Path | str) -> subprocess.CompletedProcess[str]:
    return run_app(database_url, "import", str(path))


def summary(result: subprocess.CompletedProcess[str]) -> str:
    """The last line on stdout: what the import counted."""
    return result.stdout.splitlines()[-1]


def message(
    i: int, room: str, *, author: str | None = None, at: datetime | None = None, text: str = ""
) -> dict[str, Any]:
    """One message in the REST shape, as an export writes it."""
    moment = at or START + timedelta(seconds=i, microseconds=i % 1_000_000)
    return {
        "id": i,
        "room_id": room,
        "text": text or f"message {i} word{i} {SAMPLES[i % len(SAMPLES)]}",
        "created_at": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "author": author,
    }


def history(count: int, rooms: list[str], *, first: int = 1) -> list[dict[str, Any]]:
    """`count` messages spread over `rooms`, every third anonymous, with ids from `first`."""
    return [
        message(i, rooms[i % len(rooms)], author=None if i % 3 == 0 else f"user {i % 7}")
        for i in range(first, first + count)
    ]


def ndjson(messages: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(m) + b"\n" for m in messages)


def write_ndjson(path: Path, messages: list[dict[str, Any]]) -> Path:
    path.write_bytes(ndjson(messages))
    return path


def lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines()]


def send(server: ServerProcess, room: str, text: str, query: str = "") -> dict[str, Any]:
    """Send `text` over a `chat.v1.json` socket; the stored message (the sender's own copy)."""
    protocols: Any = ["chat.v1.json"]
    with connect(server.ws(room, query), subprotocols=protocols, open_timeout=10) as ws:
        while json.loads(ws.recv(timeout=10))["type"] != "history_end":
            pass
        ws.send(text)
        while True:
            frame = json.loads(ws.recv(timeout=10))
            if frame.get("own"):
                return frame  # type: ignore[no-any-return]


def rooms(server: ServerProcess) -> dict[str, dict[str, Any]]:
    listed = httpx.get(f"{server.http}/rooms", params={"limit": 1000}, timeout=10).json()
    return {r["room_id"]: r for r in listed}


def search(server: ServerProcess, q: str, room: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.http}/search", params={"q": q, "room_id": room}, timeout=10)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]
