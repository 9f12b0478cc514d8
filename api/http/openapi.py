"""The served OpenAPI document, completed so that every response the API can give is described.

FastAPI documents the success response of each route and a 422 in its own validation-error shape;
this service answers every error as `application/problem+json` (api.http.problems) instead, and
refuses requests for auth, quota, size and outages. The success schemas come from the routes'
response models (api.http.schemas); `install(app)` post-processes the generated document once: the
Problem schema, the error responses each route can produce, and the bearer security scheme. The
fuzz tests (tests/hardening/test_fuzz_openapi.py) and the contract tests
(tests/e2e/test_openapi_contract.py) check live responses against this document.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from api.http.schemas import Problem as ProblemModel

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_DESCRIPTIONS = {400: "malformed request", 401: "no or unknown bearer token", 403: "not allowed for this token",
                 404: "no such resource", 408: "upload body too slow (deadline or minimum rate)", 413: "upload over a size limit", 415: "not multipart/form-data",
                 422: "invalid parameters or form fields", 429: "quota, in-progress cap or rate limit",
                 500: "internal error (a bug; reported)", 503: "database or broker unavailable; retry"}

# Error statuses per route, beyond the ones every route can give (500, 503).
ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/api/v1/submissions"): (400, 401, 403, 408, 413, 415, 422, 429),
    ("get", "/api/v1/submissions"): (401, 422),
    ("get", "/api/v1/submissions/{submission_id}"): (401, 403, 404, 422),
    ("get", "/api/v1/submissions/{submission_id}/chunks"): (401, 403, 404, 422),
    ("get", "/api/v1/quota"): (401,),
    ("get", "/api/v1/leaderboard"): (404, 422),
}
AUTHENTICATED = {k for k, v in ERRORS.items() if 401 in v}


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    comps = doc.setdefault("components", {})
    schemas = comps.setdefault("schemas", {})
    problem = ProblemModel.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in problem.pop("$defs", {}).items():
        schemas.setdefault(name, sub)
    schemas["Problem"] = problem
    comps.setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer",
                                                          "description": "a token from `golfcheck token create`"}
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            key = (method, path)
            responses = op.setdefault("responses", {})
            for status in (*ERRORS.get(key, ()), 500, 503):
                responses[str(status)] = {"description": _DESCRIPTIONS[status],
                                          "content": {"application/problem+json": {"schema": _PROBLEM_REF}}}
            if path == "/api/v1/leaderboard":
                responses["304"] = {"description": "not modified (If-None-Match matched the ETag)"}
            if path == "/metrics":
                responses["200"] = {"description": "Prometheus text exposition",
                                    "content": {"text/plain": {"schema": {"type": "string"}}}}
            if key in AUTHENTICATED:
                op["security"] = [{"bearer": []}]
    for name in ("HTTPValidationError", "ValidationError"):
        comps["schemas"].pop(name, None)
    return doc


def operation_name(route: APIRoute) -> str:
    """Each documented operation's id is its route function's name (`list_submissions`, not
    FastAPI's `list_submissions_api_v1_submissions_get`): the method names a generated client gets.
    The app passes it as `generate_unique_id_function`."""
    return route.name


def install(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
