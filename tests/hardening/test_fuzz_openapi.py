"""API fuzzing with schemathesis against the OpenAPI document the server serves.

Every operation gets generated requests (valid and invalid: parameters, multipart bodies,
headers), sent over HTTP to `limits_server`, with a reviewer token (it may read everything, so the
fuzzer reaches the deepest code paths) and, separately, without one. Schemathesis's checks then
assert: no 5xx, the status code is one the document declares, the content type and body match
the declared schema, and required headers are there. Examples per operation are bounded so the
module stays well under a minute.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from tests.support.hardening import HServer
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
import httpx

EXAMPLES = 40
OPERATIONS = [("POST", "/api/v1/submissions"), ("GET", "/api/v1/submissions"),
              ("GET", "/api/v1/submissions/{submission_id}"), ("GET", "/api/v1/submissions/{submission_id}/chunks"),
              ("GET", "/api/v1/quota"), ("GET", "/api/v1/leaderboard"), ("GET", "/healthz"), ("GET", "/readyz"),
              ("GET", "/metrics"), ("POST", "/api/v1/submissions/{submission_id}/withdraw"),
              ("POST", "/api/v1/submissions/{submission_id}/rerun")]


@pytest.fixture(scope="module")
def served_schema(limits_server: HServer) -> Any:
    return schemathesis.openapi.from_url(limits_server.url + "/openapi.json")


@pytest.fixture(scope="module")
def fuzz_token(limits_server: HServer) -> str:
    return limits_server.server.token("reviewer", "fuzzer")


def test_served_document_describes_problem_errors(limits_server: HServer, served_schema: Any) -> None:
    doc = httpx.get(limits_server.url + "/openapi.json").json()
    upload = doc["paths"]["/api/v1/submissions"]["post"]["responses"]
    assert {"401", "413", "422", "429", "503"} <= set(upload)
    assert "application/problem+json" in upload["429"]["content"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    # The fuzz list below is every operation of the document.
    ops = {(r.ok().method.upper(), r.ok().path) for r in served_schema.get_all_operations()}
    assert ops == set(OPERATIONS)


def _fuzz(schema: Any, method: str, path: str, headers: dict[str, str], examples: int) -> None:
    # Driven through Hypothesis directly: schemathesis's pytest plugin does not run under pytest 9.
    op = schema[path][method]
    # An upload's files are "binary" to the schema, but the API also judges their content (UTF-8
    # script, JSON config): schema-valid random bytes are rightly refused with 422, so that one
    # check does not apply to the upload. All the others do (no 5xx, declared statuses, schemas).
    excluded = [positive_data_acceptance] if (method, path) == ("POST", "/api/v1/submissions") else []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, timeout=60, excluded_checks=excluded)

        try:
            run()
        except Unsatisfiable:
            # No parameters and no body: there is no schema-violating request to make.
            assert mode == GenerationMode.NEGATIVE and not (op.query or op.path_parameters or op.body)


@pytest.mark.parametrize("method,path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_authenticated(served_schema: Any, fuzz_token: str, method: str, path: str) -> None:
    _fuzz(served_schema, method, path, {"Authorization": f"Bearer {fuzz_token}"}, EXAMPLES)


@pytest.mark.parametrize("method,path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_anonymous(served_schema: Any, method: str, path: str) -> None:
    _fuzz(served_schema, method, path, {}, EXAMPLES // 4)
