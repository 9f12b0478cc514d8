"""Fixtures shared by the suites that run the service (tests/e2e, tests/hardening, tests/api ...): one
set of session fixtures (a PostgreSQL database, a Redis key prefix, the tiny submission), so running
several suites builds them once. The implementations live in tests/support/service.py."""

from tests.support.service import fresh_pg_url, pg_dbname, pg_url, redis_prefix, tiny  # noqa: F401
