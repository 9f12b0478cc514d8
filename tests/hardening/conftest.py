"""Servers shared by the hardening modules (session scope: each starts once per run).

- `corpus_server`: the embedded shape on PostgreSQL (in-process worker), so hostile uploads go
  all the way through the checks to `rejected`.
- `limits_server`: an API with no worker (nothing is ever consumed, so submissions stay active)
  and small abuse limits; the access matrix, quota tests and the fuzzer use it.
"""

from __future__ import annotations

from typing import Iterator

import pytest
from tests.support.hardening import HServer, start_hserver, stop_hserver

LIMITS = {"GOLFCHECK_DAILY_QUOTA": "4", "GOLFCHECK_MAX_ACTIVE_PER_SUBMITTER": "2",
          "GOLFCHECK_UPLOAD_RATE_PER_MIN": "8"}


@pytest.fixture(scope="session")
def corpus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HServer]:
    h = start_hserver(tmp_path_factory.mktemp("corpus-data"))
    yield h
    stop_hserver(h)


@pytest.fixture(scope="session")
def limits_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HServer]:
    h = start_hserver(tmp_path_factory.mktemp("limits-data"), "--no-worker", **LIMITS)
    yield h
    stop_hserver(h)
