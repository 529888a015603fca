"""Running the real server as a child process, and small client helpers for the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


DEFAULT_COMMAND = [sys.executable, "-m", "app"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def faulty_server_command() -> list[str]:
    """`python -m app` serving tests.faulty_app instead of app.main (settings from the env)."""
    return [sys.executable, "-c", _FAULTY]


_FAULTY = "import sys, app.__main__ as m; m.APP = 'tests.faulty_app:app'; sys.exit(m.main([]))"


def unique_room(prefix: str = "room") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class ServerProcess:
    """`python -m app` (or any command serving the app) on a free port, with its own env."""

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        *,
        database_url: str | None = None,
        command: list[str] | None = None,
        port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.database_url = database_url or f"sqlite+aiosqlite:///{workdir / 'chat.db'}"
        self.env = {
            **os.environ,
            "CHAT_DATABASE_URL": self.database_url,
            "CHAT_HOST": "127.0.0.1",
            "CHAT_PORT": str(self.port),
            "CHAT_LOG_LEVEL": "info",
            **(env or {}),
        }
        # "{port}" in the command stands for the chosen port.
        self.command = [arg.replace("{port}", str(self.port)) for arg in command or DEFAULT_COMMAND]
        self.log_path = workdir / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws(self, room_id: str, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}/{room_id}{query}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.http}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def health(self) -> dict[str, object]:
        return httpx.get(f"{self.http}/healthz", timeout=5.0).json()  # type: ignore[no-any-return]

    def all_messages(self, room_id: str) -> list[dict[str, object]]:
        """Every stored message of the room, paging forward with `after`."""
        found: list[dict[str, object]] = []
        while page := self.messages(room_id, limit=1000, after=found[-1]["id"] if found else 0):
            found.extend(page)
        return found

    def messages(self, room_id: str, **params: object) -> list[dict[str, object]]:
        response = httpx.get(f"{self.http}/rooms/{room_id}/messages", params=params, timeout=10.0)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]
