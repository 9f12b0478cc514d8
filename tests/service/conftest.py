"""Service test fixtures; the implementations live in `service_support.py` (importable by tests,
which a conftest module is not meant to be)."""

from service_support import fresh_pg_url, pg_dbname, pg_url, redis_prefix, tiny  # noqa: F401
