"""Alembic migrations: the only source of the database schema (`alembic upgrade head`)."""
