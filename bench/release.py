"""The first release, built to be measured beside the second: a git worktree of its last commit
with a virtualenv of its own, kept in a cache directory and reused from run to run.

`FIRST_RELEASE` is the commit before the second release's first change. The worktree is
detached (no branch) and the venv holds that commit's own dependencies, so what runs is the
first release as it shipped, `python -m app` from its worktree.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

FIRST_RELEASE = "42594e0"
ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chat-bench"


def prepare(commit: str = FIRST_RELEASE, *, under: Path | None = None) -> tuple[Path, Path]:
    """Build (once) the worktree and venv of `commit`; return (python, worktree)."""
    sha = _git("rev-parse", "--verify", f"{commit}^{{commit}}").strip()
    home = (under or cache_dir()) / f"release-{sha[:12]}"
    tree, venv = home / "src", home / "venv"
    python = venv / "bin" / "python"
    ready = home / "ready"
    if ready.exists() and python.exists() and (tree / "app").is_dir():
        return python, tree
    home.mkdir(parents=True, exist_ok=True)
    if not (tree / "app").is_dir():
        _git("worktree", "prune")  # a cache directory removed by hand leaves a stale entry
        log.info("checking out %s into %s", sha[:12], tree)
        _git("worktree", "add", "--detach", "--force", str(tree), sha)
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)])
    log.info("installing the dependencies of %s into %s", sha[:12], venv)
    _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(tree)])
    ready.write_text(sha + "\n")
    return python, tree


def _git(*args: str) -> str:
    return _run(["git", "-C", str(ROOT), *args])


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    python, tree = prepare(*sys.argv[1:2])
    sys.stdout.write(f"{python}\n{tree}\n")
