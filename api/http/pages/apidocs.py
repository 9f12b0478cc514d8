"""/docs: the API reference as a plain server-rendered page, built from the served OpenAPI document.

FastAPI's Swagger UI and ReDoc pages load their scripts from a CDN (without SRI), on the same
origin as the reviewer pages, and do not work offline. This page needs nothing but the site's own
CSS and runs under the same Content-Security-Policy as every other page; /redoc points here, and
the machine-readable document stays at /openapi.json.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.http.pages.common import redirect, render

router = APIRouter(include_in_schema=False)
METHODS = ("get", "post", "put", "patch", "delete")


def _schema_text(schema: Any) -> str:
    if not isinstance(schema, dict):
        return ""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    kind = schema.get("type", "")
    if kind == "array":
        return f"array of {_schema_text(schema.get('items')) or 'values'}"
    return str(kind)


def operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per path and method: summary, parameters, and the statuses it can answer."""
    out = []
    for path, ops in sorted(doc.get("paths", {}).items()):
        for method in METHODS:
            op = ops.get(method)
            if op is None:
                continue
            params = [{"name": p.get("name"), "where": p.get("in"), "required": bool(p.get("required")),
                       "type": _schema_text(p.get("schema"))} for p in op.get("parameters", [])]
            form = (op.get("requestBody", {}).get("content", {}).get("multipart/form-data", {})
                    .get("schema", {}).get("properties", {}))
            fields = [{"name": n, "description": f.get("description", "")} for n, f in form.items()]
            responses = [{"status": code, "description": r.get("description", "")}
                         for code, r in sorted(op.get("responses", {}).items())]
            out.append({"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                        "description": op.get("description", ""), "params": params, "fields": fields,
                        "responses": responses, "auth": bool(op.get("security"))})
    return out


@router.get("/docs")
def docs_page(request: Request) -> Response:
    doc = request.app.openapi()
    return render(request, "apidocs.html", {"title": "API reference", "info": doc.get("info", {}),
                                            "ops": operations(doc)})


@router.get("/redoc")
def redoc() -> Response:
    return redirect("/docs")
