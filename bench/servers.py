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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.auth import mint_token
from bench.release import FIRST_RELEASE, prepare

log = logging.getLogger(__name__)

TOKEN_SECRET = "bench-secret-of-the-access-tokens-0123456789"

ROOT = Path(__file__).resolve().parent.parent
PINNED = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
SERVER_CORE, GENERATOR_CORE = 0, 1


@dataclass(frozen=True)
class Kind:
    """How to serve one kind of server, and how its clients talk to it."""

    command: tuple[str, ...]  # after the interpreter
    env: dict[str, str] = field(default_factory=dict)
    tokens: bool = False  # every client joins with an access token (CHAT_AUTH_SECRET set)
    keyed: bool = False  # room senders speak `chat.v2.json`, every message with a client key
    scrape: float | None = None  # GET /metrics every this many seconds, as Prometheus would
    release: str | None = None  # a commit served from its own worktree and venv (bench.release)

    @property
    def is_app(self) -> bool:
        """`python -m app`: settings from CHAT_* variables, a /healthz to wait for."""
        return self.command == ("-m", "app")


APP = ("-m", "app")
KINDS: dict[str, Kind] = {
    "project": Kind(APP),
    # The project with its room senders speaking chat.v2.json, a client key on every message:
    # on a server of its own, so that it is compared with `project` as any kind is.
    "keyed": Kind(APP, keyed=True),
    # The project with CHAT_AUTH_SECRET set, every client with a token.
    "tokens": Kind(APP, env={"CHAT_AUTH_SECRET": TOKEN_SECRET}, tokens=True),
    # Every feature of the second release priced at once: tokens, keyed `chat.v2.json`
    # senders and /metrics scraped every second.
    "full": Kind(APP, env={"CHAT_AUTH_SECRET": TOKEN_SECRET}, tokens=True, keyed=True, scrape=1.0),
    # The first release as it shipped (the commit before the second release's first change).
    "release1": Kind(APP, release=FIRST_RELEASE),
    "memory": Kind(("-m", "bench.memstore")),
    "naive": Kind(("-m", "bench.baselines.naive")),
    "ceiling": Kind(("-m", "bench.baselines.ceiling")),
    "durable": Kind(("-m", "bench.baselines.durable")),
    # The cost of the metrics: the project scraped every second, and with CHAT_METRICS=0.
    "metrics": Kind(APP, scrape=1.0),
    "nometrics": Kind(APP, env={"CHAT_METRICS": "0"}),
}
BASELINES = ("naive", "ceiling", "durable")  # no /healthz, no JSON protocol


def kind_of(name: str) -> Kind:
    """A known kind; `at-COMMIT`, the project at any commit (built like release1); `keyed-KIND`,
    any of them with keyed `chat.v2.json` senders; or a variant of bench/variant.py (the
    project with one thing changed)."""
    if name.startswith("at-"):
        return Kind(APP, release=name[3:])
    if name.startswith("keyed-"):  # its room senders speak chat.v2.json, a key a message
        return replace(kind_of(name[len("keyed-") :]), keyed=True)
    return KINDS.get(name) or Kind(("-m", "bench.variant", name))


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
        self.spec = kind_of(kind)
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
            **self.spec.env,
        }
        python, cwd = sys.executable, ROOT
        if self.spec.release is not None:
            python_path, tree = prepare(self.spec.release)
            python, cwd = str(python_path), tree
        command = [python, *self.spec.command]
        if not self.spec.is_app:
            command += ["--port", str(self.port)]
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=cwd,
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
        if self.spec.scrape is not None:
            self._scraper = Scraper(self.port, self.spec.scrape)
        return self

    def _ready(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            if self.kind not in BASELINES:
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
    """GET /metrics every `every` seconds from a thread of the bench, as Prometheus would."""

    def __init__(self, port: int, every: float) -> None:
        self.port = port
        self.every = every
        self.scrapes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"scrape-{port}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        while not self._stop.wait(self.every):
            try:
                conn.request("GET", "/metrics")
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                log.warning("scraping port %d failed: %s", self.port, exc)
                conn.close()
                continue
            if response.status != 200:
                log.warning("/metrics on port %d answered %d", self.port, response.status)
            else:
                self.scrapes += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        log.info("port %d scraped %d times", self.port, self.scrapes)


def generate(
    server: Server, specs: list[dict[str, Any]], timeout: float = 600.0
) -> list[dict[str, Any]]:
    """Run workloads one after the other in a fresh load-generator process against `server`."""
    specs = [{**spec, "port": server.port, "server_pid": server.pid} for spec in specs]
    if server.spec.keyed:
        specs = [{**spec, "keyed": True} if spec["workload"] == "rooms" else spec for spec in specs]
    if server.spec.tokens:
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
