"""The served OpenAPI document, completed so that every response the API can give is described.

FastAPI documents the success response of each route and a 422 in its own validation-error shape;
this service answers every error as `application/problem+json` (api.http.problems) instead, and
refuses requests for auth, quota, size and outages. `install(app)` post-processes the generated
document once: the Problem schema, the error responses each route can produce, the bearer
security scheme, and success schemas for the JSON the routes return. The fuzz tests
(tests/hardening/test_fuzz_openapi.py) check every live response against this document.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from api.http.problems import KINDS

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "kind"],
    "properties": {
        "type": {"type": "string", "pattern": "^urn:golfcheck:problem:"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "kind": {"type": "string", "enum": sorted(KINDS)},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_DESCRIPTIONS = {400: "malformed request", 401: "no or unknown bearer token", 403: "not allowed for this token",
                 404: "no such resource", 408: "upload body too slow (deadline or minimum rate)", 413: "upload over a size limit", 415: "not multipart/form-data",
                 422: "invalid parameters or form fields", 429: "quota, in-progress cap or rate limit",
                 500: "internal error (a bug; reported)", 503: "database or broker unavailable; retry"}

_OBJ = {"type": "object", "additionalProperties": True}
_QUOTA = {"type": "object", "required": ["daily_limit", "used_today", "remaining", "resets_at", "active", "max_active"],
          "properties": {"daily_limit": {"type": "integer"}, "used_today": {"type": "integer"},
                         "remaining": {"type": "integer", "minimum": 0}, "resets_at": {"type": "string"},
                         "active": {"type": "integer"}, "max_active": {"type": "integer"}}}
_SUBMISSION = {"type": "object", "required": ["id", "state", "attempt", "sizes", "verdict", "history", "links"],
               "properties": {"id": {"type": "string"}, "state": {"type": "string"}, "attempt": {"type": "integer"},
                              "sizes": _OBJ, "verdict": _OBJ, "history": {"type": "array"}, "links": _OBJ,
                              "quota": _QUOTA, "duplicate": {"type": "boolean"}}}
_BOARD_SECTION = {"type": "object", "required": ["total", "entries"],
                  "properties": {"total": {"type": "integer"}, "entries": {"type": "array", "items": _OBJ}}}
SUCCESS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/submissions"): _SUBMISSION,
    ("get", "/api/v1/submissions/{submission_id}"): _SUBMISSION,
    ("get", "/api/v1/submissions"): {"type": "object", "required": ["submissions", "limit", "offset"],
                                     "properties": {"submissions": {"type": "array", "items": _OBJ}}},
    ("get", "/api/v1/submissions/{submission_id}/chunks"): {
        "type": "object", "required": ["submission_id", "chunks"],
        "properties": {"chunks": {"type": "array", "items": _OBJ}}},
    ("get", "/api/v1/quota"): _QUOTA,
    ("get", "/api/v1/leaderboard"): {"type": "object", "required": ["track", "verified", "claimed_only"],
                                     "properties": {"track": {"type": "string"}, "verified": _BOARD_SECTION,
                                                    "claimed_only": _BOARD_SECTION}},
    ("get", "/healthz"): {"type": "object", "required": ["status"]},
    ("get", "/readyz"): {"type": "object", "required": ["status", "checks"]},
}
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
    comps.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    comps.setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer",
                                                          "description": "a token from `golfcheck token create`"}
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            key = (method, path)
            responses = op.setdefault("responses", {})
            if key in SUCCESS:
                for code, resp in responses.items():
                    if code.startswith("2") and code != "204":
                        resp["content"] = {"application/json": {"schema": SUCCESS[key]}}
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


def install(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
