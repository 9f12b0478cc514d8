"""Fixtures for the contestant-experience tests: one embedded `golfcheck serve` (SQLite, in-process
worker) in a temp data directory, a submitter token and one submission published through
`golfcheck submit --wait`. Every command runs the real `golfcheck` executable."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from service_support import GOLFCHECK, REPO, Server, base_env, start_server


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | str = REPO,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real command line, never raising on a non-zero exit (tests assert the code)."""
    return subprocess.run([GOLFCHECK, *args], env=env if env is not None else clean_env(), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLFCHECK_")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("ux-embedded")
    srv = start_server(base_env(data), data)
    yield srv
    srv.proc.stop()


@pytest.fixture(scope="module")
def alice(server: Server) -> str:
    return server.token("submitter", "alice")


@pytest.fixture(scope="module")
def published(server: Server, alice: str, tiny: dict[str, Any]) -> dict[str, Any]:
    out = server.cli("submit", str(tiny["dir"]), "--server", server.url, "--token", alice, "--wait", "--json")
    body = json.loads(out.stdout)
    assert body["state"] == "published", body
    return body  # type: ignore[no-any-return]
