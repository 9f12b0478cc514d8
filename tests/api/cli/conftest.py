"""Fixtures for the contestant-experience tests: one embedded `golfcheck serve` (SQLite, in-process
worker) in a temp data directory, a submitter token and one submission published through
`golfcheck submit --wait`. Every command runs the real `golfcheck` executable."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from tests.support.service import Server, base_env, start_server


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
