"""`python -m bench --quick` end to end, so that the benchmark never rots: it runs the project
and both baselines, checks the project's delivery guarantees under load, and writes its files."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, out


def test_quick_bench_passes_its_delivery_checks(quick_run):
    done, _ = quick_run
    assert done.returncode == 0, done.stderr[-3000:]


def test_quick_bench_measures_every_workload_on_every_server(quick_run):
    _, out = quick_run
    results = json.loads((out / "bench.json").read_text())
    workloads = results["workloads"]
    for name in ("fanout", "many", "slow", "noslow", "join", "idle"):
        assert set(workloads[name]) == {"project", "naive", "ceiling"}, name
    assert any(name.startswith("history-") for name in workloads)
    fanout = results["raw"]["project"]["fanout"][0]
    assert fanout["exactly_once"] and fanout["same_order"] and fanout["delivered"] == 1.0
    for name in ("fanout-keyed", "retries"):  # chat.v2.json: the project's own protocol
        assert set(workloads[name]) == {"project"}, name
    keyed = results["raw"]["project"]["fanout-keyed"][0]
    assert keyed["exactly_once"] and keyed["same_order"] and keyed["delivered"] == 1.0
    retries = results["raw"]["project"]["retries"][0]
    assert retries["same_ids"] and retries["others_saw_retries"] == 0
    assert retries["originals_seen"] == 10 * 100  # the readers did get the originals
    assert {c["workload"] for c in results["checks"]} == {
        "fanout", "fanout-keyed", "retries", "many", "slow", "noslow"
    }  # fmt: skip
    assert {"word in 0.1%", "word in 10%"} <= set(results["search"]["queries"])
    assert len(results["search"]["writer"]) == 4


def test_quick_bench_prints_the_table_and_draws_the_chart(quick_run):
    done, out = quick_run
    assert "| target | measured | goal | met |" in done.stdout
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
