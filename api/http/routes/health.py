"""Liveness (/healthz), readiness (/readyz: database and broker reachable) and /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from api.core.db import get_engine
from api.http.deps import StrictQuery
from api.http.metrics import CONTENT_TYPE
from api.http.problems import problem_response
from api.core.queue import broker_reachable
from api.http.schemas import Liveness, Readiness
from api.core.settings import Settings

router = APIRouter(tags=["health"], dependencies=[StrictQuery])


@router.get("/healthz", response_model=Liveness)
def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


def _database_ok(settings: Settings) -> bool:
    try:
        with get_engine(settings).connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False


@router.get("/readyz", response_model=Readiness)
async def readyz(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    checks: dict[str, Any] = {
        "database": await run_in_threadpool(_database_ok, settings),
        "broker": await run_in_threadpool(broker_reachable, settings),
    }
    for name, companion in request.app.state.companions.items():  # e.g. the embedded worker
        checks[name] = companion.alive()
    if all(checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    down = ", ".join(k for k, ok in checks.items() if not ok)
    return problem_response("service-unavailable", f"not ready: {down} unreachable", checks=checks,
                            headers={"Retry-After": "5"}, instance="/readyz")


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(request.app.state.metrics.render)
    return Response(body, media_type=CONTENT_TYPE)
