"""The FastAPI application: `create_http_app(settings)` wires routes, pages, error handlers,
metrics and the body deadline. It knows nothing of the worker: processes that should run beside
the API in the same event loop's lifetime (the embedded worker) are handed in as `companions` by
the composition root, `api.main`.
"""

from __future__ import annotations

import contextlib
import logging
from typing import AsyncIterator, Callable, Mapping, Protocol

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api import __doc__ as _api_doc
from api.core.quota import RateLimiter
from api.core.settings import Settings
from api.core.storage import BlobStore
from api.http import openapi, pages
from api.http.bodydeadline import BodyDeadline
from api.http.metrics import Metrics
from api.http.problems import install_handlers
from api.http.routes import contestant, health, leaderboard, submissions

log = logging.getLogger("golfcheck.api")
VERSION = "0.1.0"


class Companion(Protocol):
    """Something started with the app and stopped with it; /readyz reports whether it is alive."""

    def alive(self) -> bool: ...

    def stop(self) -> None: ...


def create_http_app(settings: Settings,
                    companions: Mapping[str, Callable[[Settings], Companion]] | None = None) -> FastAPI:
    """The HTTP service on `settings`. Each companion `name -> start(settings)` is started (in a
    thread) when the app starts, kept as `app.state.companions[name]`, and stopped when it stops."""
    starters = dict(companions or {})

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.companions = {}
        try:
            for name, start in starters.items():
                app.state.companions[name] = await run_in_threadpool(start, settings)
            yield
        finally:
            for running in reversed(list(app.state.companions.values())):
                await run_in_threadpool(running.stop)

    app = FastAPI(
        title="golfcheck",
        version=VERSION,
        description="Verification service for Parameter Golf submissions. " + (_api_doc or ""),
        lifespan=lifespan,
        generate_unique_id_function=openapi.operation_name,
        # Swagger UI and ReDoc load scripts from a CDN; /docs is a local page instead (api.http.pages.apidocs).
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.companions = {}
    app.state.store = BlobStore(settings.blob_dir)
    app.state.metrics = Metrics(settings)
    app.state.upload_limiter = RateLimiter(settings.upload_rate_per_min)
    app.state.leaderboard_cache = leaderboard.LeaderboardCache()
    install_handlers(app)
    app.middleware("http")(app.state.metrics.middleware())
    # Every request body (uploads have their own, api.http.routes.submissions): a deadline and a rate.
    app.add_middleware(BodyDeadline, settings=settings)
    # Outermost: serves the cached public leaderboard before any other middleware runs.
    app.add_middleware(leaderboard.LeaderboardFastPath, owner=app)
    app.include_router(submissions.router)
    app.include_router(contestant.router)  # a submitter's withdraw / re-run
    app.include_router(leaderboard.router)
    app.include_router(health.router)
    pages.install(app)  # HTML: public leaderboard/entry pages and the reviewer dashboard
    openapi.install(app)  # every error response described (problem+json), bearer auth, success shapes
    return app
