"""Fixtures shared by the suites that run the service (tests/service, tests/hardening): one set of
session fixtures (a PostgreSQL database, a Redis key prefix, the tiny submission), so running both
suites builds them once. The implementations live in tests/common/service_support.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "common"))

from service_support import fresh_pg_url, pg_dbname, pg_url, redis_prefix, tiny  # noqa: E402,F401
