"""The production compose file: valid for docker-compose, and in step with the settings code."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from api.core.settings import ENV_VARS, Settings
from tests.support.paths import REPO

COMPOSE = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # type: ignore[no-any-return]


def test_docker_compose_config_is_valid() -> None:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is not installed (the Debian package docker-compose; .ci/system-deps installs it)"
    proc = subprocess.run([exe, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr


def test_services_and_their_wiring(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "api", "worker-checks", "worker-eval", "flower"} <= set(services)
    for name in ("postgres", "redis", "api", "worker-checks", "worker-eval"):
        assert "healthcheck" in services[name], name
    for name in ("api", "worker-checks", "worker-eval"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert services["flower"]["profiles"] == ["ops"]


def test_eval_worker_has_a_gpu_and_no_outside_network(compose: dict[str, Any]) -> None:
    ev = compose["services"]["worker-eval"]
    devices = ev["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert ev["networks"] == ["backend"] and compose["networks"]["backend"]["internal"] is True
    assert "--concurrency" in ev["command"] and ev["command"][ev["command"].index("--concurrency") + 1] == "1"
    assert ev["environment"]["GOLFCHECK_DEVICE"] == "cuda"


def test_every_golfcheck_variable_in_compose_is_read_by_the_code(compose: dict[str, Any]) -> None:
    used = set(re.findall(r"\bGOLFCHECK_[A-Z0-9_]+", COMPOSE.read_text()))
    assert used, "compose sets no GOLFCHECK_ variables"
    assert used <= set(ENV_VARS), f"unknown to api/core/settings.py: {sorted(used - set(ENV_VARS))}"
    env = compose["x-golfcheck-env"]
    s = Settings.from_env({k: str(v) for k, v in env.items()})
    assert s.broker_url.startswith("redis://") and s.database_url.startswith("postgresql+psycopg://")
    assert not s.run_embedded_worker
    # The broker must not redeliver a task that is still inside its time limit.
    assert s.visibility_timeout_s > s.eval_time_limit_s + 60


def test_every_documented_variable_is_read(compose: dict[str, Any]) -> None:
    """ENV_VARS (the settings table in docs/service.md) lists only variables the settings module reads
    (from_env and the helpers it calls, such as the data-directory resolution)."""
    body = (REPO / "api" / "core" / "settings.py").read_text()
    for var in ENV_VARS:
        assert f'"{var}"' in body, f"{var} is listed but never read"
    docs = REPO / "docs" / "service.md"
    if docs.exists():
        text = docs.read_text()
        missing = [v for v in ENV_VARS if v not in text]
        assert not missing, f"docs/service.md does not document {missing}"
