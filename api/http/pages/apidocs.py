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
            responses = [{"status": code, "description": r.get("description", ""),
                          "schema": next((_schema_text(c.get("schema")) for c in r.get("content", {}).values()), "")}
                         for code, r in sorted(op.get("responses", {}).items())]
            out.append({"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                        "description": op.get("description", ""), "params": params, "fields": fields,
                        "responses": responses, "auth": bool(op.get("security"))})
    return out


def _field_type(schema: dict[str, Any]) -> str:
    options = [o for o in schema.get("anyOf", [schema]) if o.get("type") != "null"]
    text = " or ".join(filter(None, ("one of " + ", ".join(map(str, o["enum"])) if "enum" in o else _schema_text(o)
                                     for o in options))) or "any"
    return text + (" or null" if len(options) < len(schema.get("anyOf", [schema])) else "")


def schemas(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The named response schemas with their fields, so a reader can see each shape here too."""
    out = []
    for name, schema in sorted(doc.get("components", {}).get("schemas", {}).items()):
        required = set(schema.get("required", []))
        fields = [{"name": n, "type": _field_type(f), "required": n in required, "description": f.get("description", "")}
                  for n, f in schema.get("properties", {}).items()]
        out.append({"name": name, "description": schema.get("description", ""), "fields": fields,
                    "enum": schema.get("enum", [])})
    return out


@router.get("/docs")
def docs_page(request: Request) -> Response:
    doc = request.app.openapi()
    return render(request, "apidocs.html", {"title": "API reference", "info": doc.get("info", {}),
                                            "ops": operations(doc), "schemas": schemas(doc)})


@router.get("/redoc")
def redoc() -> Response:
    return redirect("/docs")
