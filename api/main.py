"""The composition root: the whole service of one process, the HTTP layer (`api.http`) plus, in
the embedded default, the worker (`worker.embedded`) running beside it.

This is the only module that imports both sides; the HTTP layer never imports the worker, and
the worker never imports the HTTP layer (tests/test_import_contracts.py). `golfcheck serve` (which
also migrates the database first) runs `create_app`; any ASGI server can run the same app as
`uvicorn --factory api.main:app_factory` with the same GOLFCHECK_* environment.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.core.settings import Settings, get_settings
from api.http.app import create_http_app


def create_app(settings: Settings | None = None, *, embedded_worker: bool | None = None) -> FastAPI:
    """The app on `settings` (default: the environment's). `embedded_worker` None follows the
    settings (on exactly with the in-memory broker); True/False force it (`serve --worker/--no-worker`)."""
    settings = settings or get_settings()
    run_worker = settings.run_embedded_worker if embedded_worker is None else embedded_worker
    if not run_worker:
        return create_http_app(settings)
    # Imported only by a process that hosts the worker: the pipeline loads torch (+190 MB RSS and
    # +3.6 s of start-up, docs/architecture.md), which an API-only process (`--no-worker`) never needs.
    from worker import embedded

    return create_http_app(settings, {"embedded_worker": embedded.start})


def app_factory() -> FastAPI:  # pragma: no cover - for `uvicorn --factory api.main:app_factory`
    return create_app()
