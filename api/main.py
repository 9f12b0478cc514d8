"""The FastAPI application: `create_app(settings)` wires routes, error handlers, metrics and,
in the embedded default, the in-process worker.

Run it with `golfcheck serve` (which also migrates the database first), or under any ASGI server
as `uvicorn --factory api.main:create_app` with the same GOLFCHECK_* environment.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from typing import Any, AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api import __doc__ as _api_doc
from api import openapi, pages
from api.bodydeadline import BodyDeadline
from api.metrics import Metrics
from api.problems import install_handlers
from api.quota import RateLimiter
from api.routes import health, leaderboard, submissions
from api.settings import Settings, get_settings
from api.storage import BlobStore

log = logging.getLogger("golfcheck.api")
VERSION = "0.1.0"


def create_app(settings: Settings | None = None, *, embedded_worker: bool | None = None) -> FastAPI:
    settings = settings or get_settings()
    run_worker = settings.run_embedded_worker if embedded_worker is None else embedded_worker

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.embedded_worker = None
        if run_worker:
            # Imported lazily: the API never needs the worker package unless it hosts the worker.
            embedded = importlib.import_module("worker.embedded")  # safe: a fixed module of ours
            app.state.embedded_worker = await run_in_threadpool(embedded.start, settings)
        try:
            yield
        finally:
            if app.state.embedded_worker is not None:
                await run_in_threadpool(app.state.embedded_worker.stop)

    app = FastAPI(
        title="golfcheck",
        version=VERSION,
        description="Verification service for Parameter Golf submissions. " + (_api_doc or ""),
        lifespan=lifespan,
        generate_unique_id_function=openapi.operation_name,
        # Swagger UI and ReDoc load scripts from a CDN; /docs is a local page instead (api.pages.apidocs).
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = BlobStore(settings.blob_dir)
    app.state.metrics = Metrics(settings)
    app.state.upload_limiter = RateLimiter(settings.upload_rate_per_min)
    app.state.leaderboard_cache = leaderboard.LeaderboardCache()
    install_handlers(app)
    app.middleware("http")(app.state.metrics.middleware())
    # Every request body (uploads have their own, api.routes.submissions): a deadline and a rate.
    app.add_middleware(BodyDeadline, settings=settings)
    # Outermost: serves the cached public leaderboard before any other middleware runs.
    app.add_middleware(leaderboard.LeaderboardFastPath, owner=app)
    app.include_router(submissions.router)
    app.include_router(leaderboard.router)
    app.include_router(health.router)
    pages.install(app)  # HTML: public leaderboard/entry pages and the reviewer dashboard
    openapi.install(app)  # every error response described (problem+json), bearer auth, success shapes
    return app


def app_factory() -> Any:  # pragma: no cover - for `uvicorn --factory api.main:app_factory`
    return create_app()
