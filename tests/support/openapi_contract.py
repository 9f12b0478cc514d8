"""Checks live API responses against the OpenAPI document the same server serves.

`Contract(doc).check(resp, method, path)` finds the response the document declares for the
route (the path template, e.g. "/api/v1/submissions/{submission_id}"), the status and the
content type, and validates the body with JSON Schema 2020-12 (the dialect of OpenAPI 3.1). An
undeclared status or content type fails, and so does a field the schema does not declare: every
object schema that lists its properties and says nothing of others is closed for the check
(`strict`), so a view that grows a field without its model (api.http.schemas) is caught. The served
document itself stays open, so clients generated from it tolerate fields added later.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import jsonschema

REF = "#/components/schemas/"


def strict(node: Any) -> Any:
    """A copy of a schema with every object that lists properties, and is silent about others, closed."""
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


class Contract:
    def __init__(self, doc: dict[str, Any]):
        self.doc = doc
        self.components = strict(copy.deepcopy(doc.get("components", {})))
        self.checked: set[tuple[str, str, int]] = set()

    def schema_for(self, method: str, path: str, status: int, media_type: str) -> dict[str, Any]:
        op = self.doc["paths"].get(path, {}).get(method.lower())
        assert op is not None, f"{method} {path} is not in the OpenAPI document"
        declared = op.get("responses", {})
        assert str(status) in declared, f"{method} {path} answered {status}; the document declares {sorted(declared)}"
        content = declared[str(status)].get("content", {})
        assert media_type in content, (f"{method} {path} {status} answered {media_type}; the document declares "
                                       f"{sorted(content)}")
        return content[media_type]["schema"]  # type: ignore[no-any-return]

    def validate(self, body: Any, schema: dict[str, Any]) -> None:
        """Raise jsonschema.ValidationError unless `body` fits `schema` (closed objects)."""
        root = {**strict(schema), "components": self.components}
        jsonschema.Draft202012Validator(root).validate(body)

    def check(self, resp: httpx.Response, method: str, path: str) -> Any:
        """Validate `resp` against the document; returns the parsed body."""
        media_type = resp.headers.get("content-type", "").split(";")[0].strip()
        schema = self.schema_for(method, path, resp.status_code, media_type)
        body = resp.json()
        try:
            self.validate(body, schema)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(body)"
            raise AssertionError(f"{method} {path} {resp.status_code}: the body does not match the document "
                                 f"at {where}: {exc.message}") from None
        self.checked.add((method.upper(), path, resp.status_code))
        return body

    def named(self, schema: dict[str, Any]) -> str:
        """The component name a schema refers to (it must be a plain $ref)."""
        ref = schema.get("$ref", "")
        assert ref.startswith(REF), f"an anonymous schema where a named one was expected: {schema}"
        return ref[len(REF):]

    def component(self, name: str) -> dict[str, Any]:
        return self.doc["components"]["schemas"][name]  # type: ignore[no-any-return]
