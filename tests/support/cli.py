"""Helpers for the contestant-experience tests (a uniquely named module: test modules import it,
never `conftest`, which several test folders have)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.service import GOLFCHECK
from tests.support.paths import REPO


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | str = REPO,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real command line, never raising on a non-zero exit (tests assert the code)."""
    return subprocess.run([GOLFCHECK, *args], env=env if env is not None else clean_env(), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLFCHECK_")}
    env.update(extra)
    return env
