"""Bring the database to the newest schema with Alembic (the only source of the schema).

Used by `golfcheck serve` at start-up and by every command that touches the database, so the
embedded default needs no separate migration step. Idempotent: at head it does nothing.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from api.core.settings import Settings
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from api.core.db import get_engine

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = settings.db_url
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), revision)


def current_heads(settings: Settings) -> set[str]:
    with get_engine(settings).connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def head_revision(settings: Settings) -> str | None:
    return ScriptDirectory.from_config(alembic_config(settings)).get_current_head()
