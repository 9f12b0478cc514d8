"""One embedded `golfcheck serve` (SQLite, in-process worker) per test module, and a submission
published through `golfcheck submit --wait`: the bodies of the `server` and `published` fixtures
that the CLI and end-to-end test modules declare."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from tests.support.service import Server, base_env, start_server


def embedded_server(tmp_path_factory: pytest.TempPathFactory, name: str, **env: str) -> Iterator[Server]:
    """A server in a fresh data directory named `name`, with `env` over the base settings;
    stopped when the fixture that yields from it is torn down."""
    data = tmp_path_factory.mktemp(name)
    srv = start_server(base_env(data, **env), data)
    yield srv
    srv.proc.stop()


def publish(server: Server, token: str, tiny: dict[str, Any]) -> dict[str, Any]:
    """The JSON answer of `golfcheck submit --wait --json` for the tiny submission folder."""
    out = server.cli("submit", str(tiny["dir"]), "--server", server.url, "--token", token, "--wait", "--json")
    return json.loads(out.stdout)  # type: ignore[no-any-return]
