"""Alembic environment: the URL comes from the same settings object the service uses.

`api.core.migrate.upgrade(settings)` passes its URL in `config.attributes["url"]`; the plain
`alembic upgrade head` command (the compose `migrate` service) falls back to `get_settings()`.
On PostgreSQL a transaction-level advisory lock serialises concurrent upgrades (the API, a CLI
command and the migrate container may all start at once).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from api.core.models import Base
from api.core.settings import get_settings

# Any 64-bit constant; all golfcheck migrators agree on it.
_ADVISORY_LOCK_KEY = 0x60_1F_C4_EC


def _url() -> str:
    url = context.config.attributes.get("url")
    if url:
        return str(url)
    return get_settings().db_url


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    url = _url()
    connectable = create_engine(url, poolclass=pool.NullPool)
    with connectable.connect() as connection:
        is_sqlite = connection.dialect.name == "sqlite"
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            compare_type=True,
            render_as_batch=is_sqlite,  # SQLite can only ALTER through table copies
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
