"""Database engine and sessions (SQLAlchemy 2). The schema itself comes only from Alembic.

`get_engine(settings)` caches one engine per database URL in this process; `session_scope`
is the one way code outside request handlers opens a transaction. SQLite (the embedded default)
runs in WAL mode with a busy timeout so the API threads and the in-process worker can share the
file; PostgreSQL connections are pinged before use so a database restart costs one failed
request at most, not a pool full of dead connections.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.core.settings import Settings

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}


def utcnow() -> dt.datetime:
    """Timestamps are always timezone-aware UTC, set by Python (not the database clock), so
    SQLite and PostgreSQL store and compare them the same way."""
    return dt.datetime.now(dt.timezone.utc)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")      # readers do not block the writer
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")    # wait for the writer instead of failing
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(settings: Settings) -> Engine:
    url = settings.db_url
    if settings.is_sqlite:
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=10,
        # A short connect timeout turns "database unreachable" into a 503 within seconds.
        connect_args={"connect_timeout": 5},
    )


def get_engine(settings: Settings) -> Engine:
    with _lock:
        engine = _engines.get(settings.db_url)
        if engine is None:
            engine = _engines[settings.db_url] = make_engine(settings)
        return engine


def get_sessionmaker(settings: Settings) -> sessionmaker[Session]:
    with _lock:
        factory = _factories.get(settings.db_url)
    if factory is None:
        engine = get_engine(settings)
        with _lock:
            factory = _factories.setdefault(
                settings.db_url, sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
            )
    return factory


@contextlib.contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A session whose transaction commits on normal exit and rolls back on any exception."""
    session = get_sessionmaker(settings)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose_engines() -> None:
    """Drop pooled connections (after fork, and in tests that point at a fresh database)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _factories.clear()
