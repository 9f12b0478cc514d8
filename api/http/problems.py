"""Errors as `application/problem+json` (RFC 9457), one stable `type` per kind of error.

Raise `Problem(kind, detail)` anywhere in a request; the handlers installed by
`install_handlers(app)` also turn FastAPI validation errors, unknown routes, database outages
and unexpected exceptions into problem documents, so a client never has to parse HTML or a
framework-specific error shape. Clients should switch on `type` (or `kind`), not on `title`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.core.quota import LimitExceeded, QuotaStatus

log = logging.getLogger("golfcheck.api")

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:golfcheck:problem:"

# kind -> (HTTP status, title). Adding a kind is fine; renaming one breaks clients.
KINDS: dict[str, tuple[int, str]] = {
    "invalid-request": (400, "The request is malformed"),
    "missing-field": (422, "A required form field is missing"),
    "invalid-field": (422, "A form field has the wrong type or value"),
    "unknown-field": (422, "The form has a field this endpoint does not accept"),
    "bad-config": (422, "The evaluation config is not valid JSON"),
    "bad-submission-json": (422, "submission_json is not valid JSON"),
    "bad-bundle": (422, "The bundle is not a usable records folder archive"),
    "validation-error": (422, "The request parameters are invalid"),
    "unsupported-media-type": (415, "Send multipart/form-data"),
    "payload-too-large": (413, "The upload is larger than allowed"),
    "request-timeout": (408, "The request body arrived too slowly"),
    "unauthorized": (401, "A bearer token is required"),
    "invalid-token": (401, "The bearer token is unknown, revoked or expired"),
    "forbidden": (403, "Your role does not allow this"),
    "not-found": (404, "No such resource"),
    "method-not-allowed": (405, "Method not allowed"),
    "conflict": (409, "The resource is in a state that does not allow this"),
    "quota-exceeded": (429, "Submission quota exceeded"),
    "too-many-active": (429, "Too many of your submissions are waiting or running"),
    "rate-limited": (429, "Too many requests; slow down"),
    "service-unavailable": (503, "A backing service is unavailable; retry shortly"),
    "database-unavailable": (503, "The database is unavailable; retry shortly"),
    "internal-error": (500, "Internal error"),
}


class Problem(Exception):
    def __init__(
        self,
        kind: str,
        detail: str | None = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        if kind not in KINDS:
            raise ValueError(f"unknown problem kind {kind!r}")
        super().__init__(detail or KINDS[kind][1])
        self.kind = kind
        self.status = status or KINDS[kind][0]
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_body(kind: str, detail: str | None, status: int, instance: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + kind,
        "title": KINDS[kind][1],
        "status": status,
        "kind": kind,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def problem_response(
    kind: str,
    detail: str | None = None,
    *,
    status: int | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> JSONResponse:
    status = status or KINDS[kind][0]
    return JSONResponse(
        problem_body(kind, detail, status, instance, **extra),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


_STATUS_KIND = {400: "invalid-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
                405: "method-not-allowed", 409: "conflict", 413: "payload-too-large",
                415: "unsupported-media-type", 422: "validation-error", 429: "quota-exceeded",
                503: "service-unavailable"}


def quota_headers(q: QuotaStatus) -> dict[str, str]:
    """The caller's quota as response headers (every upload answer and every quota refusal has them)."""
    d = q.to_dict()
    return {"X-Quota-Limit": str(d["daily_limit"]), "X-Quota-Remaining": str(d["remaining"]),
            "X-Quota-Reset": d["resets_at"]}


def limit_problem(exc: LimitExceeded) -> Problem:
    """The 429 problem of a submitting limit (api.core.quota), with Retry-After and the quota."""
    headers = {"Retry-After": str(exc.retry_after_s)}
    if exc.quota is None:
        return Problem(exc.kind, exc.message, headers=headers)
    return Problem(exc.kind, exc.message, headers={**headers, **quota_headers(exc.quota)}, quota=exc.quota.to_dict())


def is_database_outage(exc: BaseException) -> bool:
    if isinstance(exc, (OperationalError, PoolTimeoutError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.kind, exc.detail, status=exc.status, headers=exc.headers,
                                instance=request.url.path, **exc.extra)

    @app.exception_handler(LimitExceeded)
    async def _limit(request: Request, exc: LimitExceeded) -> JSONResponse:
        return await _problem(request, limit_problem(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        where = ", ".join(".".join(e["loc"]) for e in errors) or "request"
        return problem_response("validation-error", f"invalid value for {where}", instance=request.url.path,
                                errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _STATUS_KIND.get(exc.status_code, "invalid-request" if exc.status_code < 500 else "internal-error")
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail not in ("Not Found",) else None
        return problem_response(kind, detail, status=exc.status_code, headers=getattr(exc, "headers", None),
                                instance=request.url.path)

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if is_database_outage(exc):
            log.warning("database unavailable: %s: %s", type(exc).__name__, str(exc).splitlines()[0][:200])
            return problem_response("database-unavailable", "the database did not answer; nothing was stored",
                                    headers={"Retry-After": "5"}, instance=request.url.path)
        log.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response("internal-error", instance=request.url.path)

    # Registered per class (not on Exception) so they run inside the exception middleware and the
    # error does not propagate to the server as an unhandled crash.
    app.add_exception_handler(DBAPIError, _database)
    app.add_exception_handler(PoolTimeoutError, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_database_outage(exc):
            return await _database(request, exc)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response("internal-error", instance=request.url.path)
