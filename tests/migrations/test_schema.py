"""Alembic migrations are the only source of the schema: they build it on PostgreSQL and SQLite,
match the ORM models exactly, and go down and up again cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from api.core import migrate
from api.core.models import Base
from api.core.settings import Settings

CORE_TABLES = {"users", "api_tokens", "blobs", "submissions", "submission_files", "state_transitions", "attempts",
               "chunk_records", "results", "rule_results", "audit_log", "review_actions", "flags", "records"}


def _check(settings: Settings) -> None:
    migrate.upgrade(settings)
    migrate.upgrade(settings)  # idempotent at head
    engine = create_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
            tables = set(inspect(conn).get_table_names())
        assert diffs == [], f"models and migrations disagree: {diffs}"
        assert CORE_TABLES <= tables
        assert migrate.current_heads(settings) == {migrate.head_revision(settings)}
        command.downgrade(migrate.alembic_config(settings), "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(settings)
        with engine.connect() as conn:
            assert CORE_TABLES <= set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_postgresql(fresh_pg_url: str, tmp_path: Path) -> None:
    _check(Settings(data_dir=tmp_path, database_url=fresh_pg_url))


def test_sqlite(tmp_path: Path) -> None:
    _check(Settings(data_dir=tmp_path / "var"))


@pytest.mark.parametrize("name", sorted(p.name for p in (migrate.MIGRATIONS_DIR / "versions").glob("*.py")))
def test_revision_files_are_named_rev_slug(name: str) -> None:
    rev, _, slug = name.removesuffix(".py").partition("_")
    assert rev.isdigit() and slug
