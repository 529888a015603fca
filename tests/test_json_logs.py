"""`CHAT_LOG_FORMAT=json`: the server's whole output, start to stop, is one JSON object per line
with `time`, `level`, `logger` and `message`, and never a token."""

from __future__ import annotations

import json
import signal
from datetime import datetime

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.clients import closed_with, history, join, join_json, recv
from tests.test_access import SECRET, token

pytestmark = pytest.mark.anyio

TOKEN = token("alice")
BAD_TOKEN = token("mallory", secret="not-the-secret-of-these-tokens-0123456789")


async def test_every_line_of_a_session_with_errors_and_closes_is_a_json_object(start_server, room):
    srv = start_server(
        {
            "CHAT_LOG_FORMAT": "json",
            "CHAT_RATE_LIMIT": "0",
            "CHAT_MAX_MESSAGE_BYTES": "100",
            "CHAT_AUTH_SECRET": SECRET,
            "CHAT_PUBLIC_ROOMS": "*",
            "CHAT_LOG_LEVEL": "debug",  # the websockets library logs every handshake header
        }
    )
    async with join(srv.ws(room, f"?access_token={BAD_TOKEN}")) as ws:
        assert await closed_with(ws) == 4401
    async with join(srv.ws(room, f"?access_token={TOKEN}")) as ws:
        await ws.send("hello")
        assert await recv(ws) == "You wrote: hello"
        await ws.send("x" * 101)
        assert await closed_with(ws) == 1009
    async with join(srv.ws(room), additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        await ws.send(b"binary")
        assert await closed_with(ws) == 1003
    with pytest.raises(InvalidStatus):
        async with join(srv.ws("bad room!")):
            pass
    with pytest.raises(InvalidStatus):
        async with join(srv.ws(room), origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    for path in (f"/rooms/{room}/messages", "/rooms?limit=0", "/nowhere", "/metrics"):
        httpx.get(f"{srv.http}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
    staying = await join_json(srv.ws(room, f"?access_token={TOKEN}")).__aenter__()
    await history(staying)
    srv.signal(signal.SIGTERM)
    assert await closed_with(staying) == 1001
    assert srv.wait(20) == 0

    output = srv.log()
    assert TOKEN not in output
    assert BAD_TOKEN not in output
    lines = output.splitlines()
    assert len(lines) > 10
    records = []
    for line in lines:
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message"} <= set(record), line
        assert datetime.fromisoformat(record["time"]).utcoffset().total_seconds() == 0
        records.append(record)
    loggers = {r["logger"] for r in records}
    assert {"uvicorn.error", "uvicorn.access", "app.routes.ws", "app.chat"} <= loggers
    # The fields of a line are fields of their own.
    assert {"room": room, "code": 1003}.items() <= _line(records, "with 1003").items()
    assert {"room": room, "code": 1009} == {k: _line(records, "1009")[k] for k in ("room", "code")}
    assert _line(records, "drained")["clients"] == 1
    assert {"room": room, "code": 4401}.items() <= _line(records, "with 4401").items()
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert {"method": "GET", "path": "/nowhere", "status": 404}.items() <= _line(
        access, "/nowhere"
    ).items()


def _line(records: list[dict], text: str) -> dict:
    """The first line of the app (or of uvicorn's access log) that says `text`."""
    return next(
        r
        for r in records
        if text in r["message"] and r["logger"].startswith(("app", "uvicorn.access"))
    )
