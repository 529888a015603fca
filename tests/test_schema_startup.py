"""Several processes starting at once on one PostgreSQL database: exactly one migrates."""

import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.support import ROOT, free_port

pytestmark = pytest.mark.services


def test_processes_starting_together_on_an_empty_database_all_serve(fresh_postgres_url, tmp_path):
    # Plain uvicorn workers each run the lifespan's migration: without a lock they would race
    # to create the same tables and all but one would fail to start.
    ports = [free_port() for _ in range(3)]
    env = {**os.environ, "CHAT_DATABASE_URL": fresh_postgres_url, "CHAT_REDIS_URL": ""}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SERVE, str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"s{k}.log").open("w"),
        )
        for k, port in enumerate(ports)
    ]
    try:
        for k, proc in enumerate(procs):
            url = f"http://127.0.0.1:{ports[k]}/healthz"
            assert _wait_ok(url, proc), (tmp_path / f"s{k}.log").read_text()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(20)


_SERVE = (
    "import sys, uvicorn; uvicorn.run('app.main:app', host='127.0.0.1', port=int(sys.argv[1]),"
    " log_level='warning')"
)


def _wait_ok(url: str, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False
