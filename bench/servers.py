"""The servers under test, each a child process pinned to its own core, and the generator's runs.

Pinning: the server gets core 0 and every load generator core 1 (set in the child before it
execs, so every thread the server later starts inherits it); on a one-core machine nothing is
pinned and the report says so.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.auth import mint_token

log = logging.getLogger(__name__)

TOKEN_SECRET = "bench-secret-of-the-access-tokens-0123456789"

ROOT = Path(__file__).resolve().parent.parent
PINNED = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
SERVER_CORE, GENERATOR_CORE = 0, 1

COMMANDS: dict[str, list[str]] = {
    "project": ["-m", "app"],
    "tokens": ["-m", "app"],  # the project with CHAT_AUTH_SECRET set, every client with a token
    # The cost of the metrics: the project scraped every second, and with CHAT_METRICS=0.
    "metrics": ["-m", "app"],
    "nometrics": ["-m", "app"],
    "memory": ["-m", "bench.memstore"],
    "naive": ["-m", "bench.baselines.naive"],
    "ceiling": ["-m", "bench.baselines.ceiling"],
}


ENV: dict[str, dict[str, str]] = {"nometrics": {"CHAT_METRICS": "0"}}
SCRAPE_EVERY = {"metrics": 1.0}


def _pin(core: int) -> Callable[[], None] | None:
    if not PINNED:
        return None
    return lambda: os.sched_setaffinity(0, {core})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One server of a kind, on a free port; project and memory get a fresh SQLite file."""

    def __init__(self, kind: str, workdir: Path, *, database: Path | None = None) -> None:
        self.kind = kind
        self.port = free_port()
        self.database = database or workdir / f"{kind}-{self.port}.db"
        self.log_path = workdir / f"{kind}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._scraper: Scraper | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> Server:
        return self.launch().wait_ready(timeout)

    def launch(self) -> Server:
        """Start the process without waiting for it to serve (see `wait_ready`)."""
        env = {
            **os.environ,
            "CHAT_DATABASE_URL": f"sqlite+aiosqlite:///{self.database}",
            "CHAT_HOST": "127.0.0.1",
            "CHAT_PORT": str(self.port),
            "CHAT_RATE_LIMIT": "0",  # the default token bucket would close a flooding sender
            "CHAT_LOG_LEVEL": "warning",
            **({"CHAT_AUTH_SECRET": TOKEN_SECRET} if self.kind == "tokens" else {}),
            **ENV.get(self.kind, {}),
        }
        command = [sys.executable, *COMMANDS.get(self.kind, ["-m", "bench.variant", self.kind])]
        if command[1:] != ["-m", "app"]:
            command += ["--port", str(self.port)]
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_pin(SERVER_CORE),
            )
        return self

    def wait_ready(self, timeout: float = 30.0) -> Server:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"{self.kind} server did not start:\n{self.log_path.read_text()}"
                )
            time.sleep(0.05)
        if self.kind in SCRAPE_EVERY:
            self._scraper = Scraper(self.port, SCRAPE_EVERY[self.kind])
        return self

    def _ready(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            if self.kind not in ("naive", "ceiling"):
                conn.request("GET", "/healthz")
                return conn.getresponse().status == 200
            conn.connect()
            conn.close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM (the project drains and exits), then SIGKILL if it takes over 15 s."""
        if self._scraper is not None:
            self._scraper.stop()
            self._scraper = None
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class Scraper:
    """GET /metrics every `every` seconds from a thread, as Prometheus would."""

    def __init__(self, port: int, every: float) -> None:
        self.port = port
        self.every = every
        self.scrapes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"scrape-{port}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/metrics")
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"/metrics answered {response.status}")
                self.scrapes += 1
            except OSError as exc:
                log.warning("scraping port %d failed: %s", self.port, exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        log.info("port %d scraped %d times", self.port, self.scrapes)


def generate(
    server: Server, specs: list[dict[str, Any]], timeout: float = 600.0
) -> list[dict[str, Any]]:
    """Run workloads one after the other in a fresh load-generator process against `server`."""
    specs = [{**spec, "port": server.port, "server_pid": server.pid} for spec in specs]
    if server.kind == "tokens":
        # A token for every room that expires (so each socket also carries its expiry timer),
        # sent as browsers do, in the access_token query parameter.
        token = mint_token(TOKEN_SECRET, "bench", name="Bench", ttl=24 * 3600)
        specs = [{**spec, "query": f"access_token={token}"} for spec in specs]
    done = subprocess.run(
        [sys.executable, "-m", "bench.load", json.dumps(specs)],
        cwd=ROOT,
        capture_output=True,
        timeout=timeout,
        preexec_fn=_pin(GENERATOR_CORE),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed on {server.kind}:\n{done.stderr.decode()}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]
