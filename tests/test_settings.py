"""A setting with a value it cannot take stops `python -m app` at start: a non-zero exit, one
line naming the `CHAT_` variable, no traceback. Every field of Settings is covered, those added
later included: a bad value is derived from each field's own constraints."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, get_args

import pytest

from app.settings import Settings, bounds, variable
from tests.support import ROOT

# Values no field can take whatever its constraints (checked by validators, not metadata).
EXPLICIT = {
    "database_url": ["not a url"],
    "redis_url": ["http://127.0.0.1:6379"],
    "port": ["twelve"],  # not a number at all
    "public_rooms": ["lobby, not a room!"],
}


def bad_values(name: str) -> list[str]:
    """Values just outside the field's bounds, an unknown word for choices and switches."""
    field = Settings.model_fields[name]
    values = list(EXPLICIT.get(name, []))
    for rule in field.metadata:
        for attr, outside in (("ge", -1), ("gt", 0), ("le", 1), ("lt", 0)):
            if hasattr(rule, attr):
                values.append(str(getattr(rule, attr) + outside))
        if getattr(rule, "min_length", 0):
            values.append("x" * (rule.min_length - 1))
    if getattr(field.annotation, "__origin__", None) is Literal or field.annotation is bool:
        values.append("nonsense")
    return values


CASES = [(name, bad) for name in Settings.model_fields for bad in bad_values(name)]


def run_app(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "CHAT_DATABASE_URL": f"sqlite+aiosqlite:///{cwd / 'c.db'}",
            "CHAT_PORT": "0",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_setting_has_bad_values_under_test():
    # A field no bad value can be derived for would be a setting nobody checks.
    unchecked = {name for name in Settings.model_fields if not bad_values(name)}
    assert unchecked <= {"allowed_origins"}, unchecked


@pytest.mark.slow
def test_each_bad_setting_stops_the_start_with_one_line_naming_it(tmp_path: Path):
    def attempt(case: tuple[str, str]) -> tuple[str, str, subprocess.CompletedProcess[str]]:
        name, bad = case
        return name, bad, run_app({variable(name): bad}, cwd=tmp_path)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(attempt, CASES))
    for name, bad, result in results:
        output = (result.stdout + result.stderr).strip().splitlines()
        assert result.returncode != 0, (name, bad, output)
        assert len(output) == 1, (name, bad, output)
        assert variable(name) in output[0], (name, bad, output)
        assert "Traceback" not in output[0]
    assert not (tmp_path / "c.db").exists(), "a refused start touched the database"


def test_a_secret_or_url_value_is_not_repeated_in_the_line(tmp_path: Path):
    result = run_app({"CHAT_REDIS_URL": "http://user:hunter2@x"}, cwd=tmp_path)
    assert result.returncode != 0
    assert "CHAT_REDIS_URL" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_help_shows_every_setting_with_its_default_and_bounds(tmp_path: Path):
    result = run_app({}, "--help", cwd=tmp_path)
    assert result.returncode == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if "CHAT_" in line[:8]}
    for name, field in Settings.model_fields.items():
        line = lines[variable(name)]
        described: Any = bounds(field)
        assert described in line, (name, line)
        if get_args(field.annotation) and getattr(field.annotation, "__origin__", None) is Literal:
            assert "|".join(get_args(field.annotation)) in line
    assert "0 to 1000" in lines["CHAT_HISTORY_REPLAY"]
    assert "text|json" in lines["CHAT_LOG_FORMAT"]
