"""Fixtures for the contestant-experience tests: one embedded `golfcheck serve` (SQLite, in-process
worker) in a temp data directory, a submitter token and one submission published through
`golfcheck submit --wait`. Every command runs the real `golfcheck` executable."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from tests.support.embedded import embedded_server, publish
from tests.support.service import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from embedded_server(tmp_path_factory, "ux-embedded")


@pytest.fixture(scope="module")
def alice(server: Server) -> str:
    return server.token("submitter", "alice")


@pytest.fixture(scope="module")
def published(server: Server, alice: str, tiny: dict[str, Any]) -> dict[str, Any]:
    body = publish(server, alice, tiny)
    assert body["state"] == "published", body
    return body
