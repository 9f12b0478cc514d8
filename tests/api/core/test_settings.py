"""Settings: parsing, derived values and fail-fast validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.core.settings import Settings, SettingsError
from tests.support.paths import REPO
import subprocess
import sys


def test_defaults_are_the_embedded_service() -> None:
    s = Settings.from_env({})
    # The checkout's var/, absolute: never relative to the current directory (issue 13).
    assert s.data_dir == REPO / "var" and s.data_dir.is_absolute()
    assert s.is_sqlite and s.db_url.endswith("var/golfcheck.db")
    assert s.is_embedded_broker and s.run_embedded_worker
    assert s.max_file_bytes == 32_000_000 and s.max_request_bytes == 64_000_000
    assert s.cap_bytes == 16_000_000 and s.max_val_tokens is None


def test_production_urls_switch_off_the_embedded_worker() -> None:
    s = Settings.from_env({"GOLFCHECK_DATABASE_URL": "postgresql://u@db/x", "GOLFCHECK_BROKER_URL": "redis://r:6379/0"})
    assert s.database_url == "postgresql+psycopg://u@db/x" and not s.is_sqlite
    assert not s.run_embedded_worker
    forced = Settings.from_env({"GOLFCHECK_BROKER_URL": "redis://r", "GOLFCHECK_EMBEDDED_WORKER": "yes"})
    assert forced.run_embedded_worker


def test_numbers_and_flags_parse() -> None:
    s = Settings.from_env({"GOLFCHECK_MAX_FILE_BYTES": "1_000", "GOLFCHECK_MAX_REQUEST_BYTES": "2000",
                           "GOLFCHECK_MAX_VAL_TOKENS": "4096", "GOLFCHECK_AUTO_PUBLISH": "false",
                           "GOLFCHECK_HEARTBEAT_S": "0.5", "GOLFCHECK_STALE_AFTER_S": "2"})
    assert (s.max_file_bytes, s.max_request_bytes, s.max_val_tokens) == (1000, 2000, 4096)
    assert s.auto_publish is False and s.heartbeat_s == 0.5


@pytest.mark.parametrize("env, needle", [
    ({"GOLFCHECK_MAX_FILE_BYTES": "lots"}, "GOLFCHECK_MAX_FILE_BYTES"),
    ({"GOLFCHECK_AUTO_PUBLISH": "maybe"}, "GOLFCHECK_AUTO_PUBLISH"),
    ({"GOLFCHECK_HEARTBEAT_S": "10", "GOLFCHECK_STALE_AFTER_S": "5"}, "GOLFCHECK_STALE_AFTER_S"),
    ({"GOLFCHECK_MAX_FILE_BYTES": "10", "GOLFCHECK_MAX_REQUEST_BYTES": "5"}, "GOLFCHECK_MAX_FILE_BYTES"),
    ({"GOLFCHECK_DATABASE_URL": "mysql://x"}, "GOLFCHECK_DATABASE_URL"),
    ({"GOLFCHECK_HEARTBEAT_S": "nan"}, "GOLFCHECK_HEARTBEAT_S"),
])
def test_bad_values_fail_fast(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError, match=needle):
        Settings.from_env(env)


def test_cli_reports_bad_settings_as_input_error(tmp_path: Path) -> None:
    env = {"GOLFCHECK_DATA_DIR": str(tmp_path), "GOLFCHECK_MAX_FILE_BYTES": "lots", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([str(Path(sys.executable).parent / "golfcheck"), "leaderboard"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "GOLFCHECK_MAX_FILE_BYTES" in proc.stderr
