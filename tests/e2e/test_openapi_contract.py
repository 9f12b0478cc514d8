"""The API as a client developer sees it (issue 13): every response a test gets here, success or
problem+json error, is validated against the OpenAPI document the same server serves (with
undeclared fields refused: tests/support/openapi_contract.py), and the document names a schema for
every JSON shape, so a client can be generated from it.

The production shape: `golfcheck serve --no-worker` on PostgreSQL, Redis as the broker and two
Celery worker processes (checks, eval); the historical records are ingested so the board has
claimed entries next to the verified one this module publishes.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Iterator

import httpx
import jsonschema
import pytest

from api.core.db import dispose_engines
from tests.support.openapi_contract import Contract
from tests.support.service import (
    REDIS_URL,
    TINY_CONFIG,
    Proc,
    Server,
    _create_db,
    _drop_db,
    base_env,
    start_server,
    start_worker,
    upload,
    wait_final,
)

RECORDS = Path(__file__).resolve().parents[1] / "data" / "records"
SUB = "/api/v1/submissions"
ONE = "/api/v1/submissions/{submission_id}"
CHUNKS = "/api/v1/submissions/{submission_id}/chunks"
BOARD = "/api/v1/leaderboard"


class Service:
    def __init__(self, server: Server, contract: Contract, alice: str, bob: str, rita: str):
        self.server, self.contract = server, contract
        self.alice, self.bob, self.rita = alice, bob, rita

    def get(self, token: str | None, path: str, template: str, **params: Any) -> Any:
        with self.server.client(token) as c:
            return self.contract.check(c.get(path, params=params), "GET", template)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, redis_prefix: str) -> Iterator[Service]:
    data = tmp_path_factory.mktemp("contract")
    db = _create_db()
    env = base_env(data, GOLFCHECK_DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
                   GOLFCHECK_BROKER_URL=REDIS_URL, GOLFCHECK_BROKER_PREFIX=redis_prefix + "contract:")
    procs: list[Proc] = []
    server = None
    try:
        server = start_server(env, data, "--no-worker")
        procs.append(start_worker(env, data, "checks"))
        procs.append(start_worker(env, data, "eval"))
        server.cli("ingest", str(RECORDS))
        contract = Contract(httpx.get(server.url + "/openapi.json", timeout=30).json())
        yield Service(server, contract, server.token("submitter", "alice"), server.token("submitter", "bob"),
                      server.token("reviewer", "rita"))
    finally:
        for p in procs:
            p.stop()
        if server is not None:
            server.proc.stop()
        dispose_engines()
        _drop_db(db)


@pytest.fixture(scope="module")
def accepted(service: Service, tiny: dict[str, Any]) -> dict[str, Any]:
    """Alice's upload of the tiny record, as the 202 answered it."""
    with service.server.client(service.alice) as c:
        resp = upload(c, tiny)
    assert resp.status_code == 202, resp.text
    return service.contract.check(resp, "POST", SUB)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def published(service: Service, accepted: dict[str, Any]) -> dict[str, Any]:
    with service.server.client(service.alice) as c:
        final = wait_final(c, accepted["id"])
    assert final["state"] == "published", final["verdict"]
    return final


# -- the document --------------------------------------------------------------------------------


def test_every_json_response_names_its_schema(service: Service) -> None:
    doc = service.contract
    for path, ops in doc.doc["paths"].items():
        for method, op in ops.items():
            for status, resp in op["responses"].items():
                for media, content in resp.get("content", {}).items():
                    if media == "text/plain":  # /metrics
                        continue
                    name = doc.named(content["schema"])
                    if status.startswith(("4", "5")):
                        assert (media, name) == ("application/problem+json", "Problem"), (method, path, status)
    # The leaderboard's entries are named schemas with declared fields, not free-form objects.
    board = doc.component("Leaderboard")["properties"]
    sections = {k: doc.named(board[k]) for k in ("verified", "claimed_only")}
    entries = {k: doc.named(doc.component(v)["properties"]["entries"]["items"]) for k, v in sections.items()}
    assert entries == {"verified": "VerifiedEntry", "claimed_only": "ClaimedEntry"}
    for name in (*entries.values(), "SubmissionSummary", "SubmissionDetail", "Chunk", "Quota"):
        schema = doc.component(name)
        assert schema.get("additionalProperties") is not True and len(schema["properties"]) >= 4, name
    assert {"self", "page", "code"} <= set(doc.component("EntryLinks")["properties"])
    assert {"self", "page", "code"} <= set(doc.component("SubmissionLinks")["properties"])
    assert "total" in doc.component("SubmissionList")["required"]
    assert {"config", "files"} <= set(doc.component("SubmissionDetail")["required"])


def test_operations_are_named_for_generated_clients(service: Service) -> None:
    ids = [op["operationId"] for ops in service.contract.doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    assert {"create_submission", "list_submissions", "get_submission", "get_chunks", "get_quota"} <= set(ids)
    assert all(i.isidentifier() and "api_v1" not in i for i in ids), ids


def test_the_validator_refuses_what_the_document_does_not_allow(service: Service) -> None:
    """The check can fail: a body with a required field missing, a field of the wrong type or an
    undeclared field is refused, where the real body passes."""
    with service.server.client(service.alice) as c:
        resp = c.get("/api/v1/quota")
    body = service.contract.check(resp, "GET", "/api/v1/quota")
    schema = service.contract.schema_for("GET", "/api/v1/quota", 200, "application/json")
    missing = {k: v for k, v in body.items() if k != "remaining"}
    wrong = {**body, "used_today": "three"}
    extra = {**body, "surprise": 1}
    for bad in (missing, wrong, extra):
        with pytest.raises(jsonschema.ValidationError):
            service.contract.validate(bad, schema)
    # An undeclared status is refused too.
    fake = httpx.Response(418, json=body, request=resp.request)
    with pytest.raises(AssertionError, match="418"):
        service.contract.check(fake, "GET", "/api/v1/quota")


def test_an_entry_missing_a_field_is_refused(service: Service, published: dict[str, Any]) -> None:
    board = service.get(None, BOARD, BOARD)
    schema = service.contract.schema_for("GET", BOARD, 200, "application/json")
    for section in ("verified", "claimed_only"):
        broken = copy.deepcopy(board)
        del broken[section]["entries"][0]["links"]["page"]
        with pytest.raises(jsonschema.ValidationError):
            service.contract.validate(broken, schema)


# -- submissions ---------------------------------------------------------------------------------


def test_upload_answer_carries_config_files_and_links(accepted: dict[str, Any], tiny: dict[str, Any]) -> None:
    assert accepted["duplicate"] is False and accepted["state"] == "queued"
    assert accepted["config"] == TINY_CONFIG
    assert len(accepted["config_sha256"]) == 64
    roles = {f["role"]: f for f in accepted["files"]}
    # The multipart config part is listed with the other files (upload() sends it as eval.json).
    assert roles["config"]["filename"] == "eval.json"
    assert roles["config"]["size"] == len(json.dumps(TINY_CONFIG).encode())
    assert set(roles) == {"artifact", "code", "log", "config"}
    links = accepted["links"]
    assert links["self"] == f"{SUB}/{accepted['id']}" and links["chunks"] == f"{SUB}/{accepted['id']}/chunks"
    # Not published yet: no public page or code link.
    assert links["page"] is None and links["code"] is None


def test_duplicate_upload_is_a_documented_200(service: Service, accepted: dict[str, Any], tiny: dict[str, Any]) -> None:
    with service.server.client(service.alice) as c:
        resp = upload(c, tiny)
    assert resp.status_code == 200, resp.text
    body = service.contract.check(resp, "POST", SUB)
    assert body["duplicate"] is True and body["id"] == accepted["id"]


def test_published_submission_and_its_links(service: Service, published: dict[str, Any]) -> None:
    sid = published["id"]
    body = service.get(service.alice, f"{SUB}/{sid}", ONE)
    assert body["measured"]["val_bpb"] == body["measured_val_bpb"] and body["verdict"]["rules"]
    assert body["timestamps"]["published"] is not None
    assert body["config"] == TINY_CONFIG
    # A reviewer's view (worker names shown) fits the same schema.
    as_reviewer = service.get(service.rita, f"{SUB}/{sid}", ONE)
    assert any(a["worker"] for a in as_reviewer["attempts"])
    links = body["links"]
    assert links["page"] == f"/entries/{sid}" and links["code"] == f"/entries/{sid}/code"
    with service.server.client() as c:
        page, code = c.get(links["page"]), c.get(links["code"])
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert code.status_code == 200 and code.text.startswith("# a tiny training script")
    chunks = service.get(service.alice, links["chunks"], CHUNKS)
    assert chunks["submission_id"] == sid and len(chunks["chunks"]) == chunks["chunks_total"] >= 1


def test_listing_has_a_total_over_all_pages(service: Service, published: dict[str, Any],
                                            tiny: dict[str, Any]) -> None:
    with service.server.client(service.bob) as c:
        for i in range(3):  # three distinct submissions of bob's (different code), left to the workers
            assert upload(c, tiny, extra_code=f"# bob {i}\n").status_code == 202
    first = service.get(service.bob, SUB, SUB, limit=2)
    assert first["total"] == 3 and len(first["submissions"]) == 2 and (first["limit"], first["offset"]) == (2, 0)
    rest = service.get(service.bob, SUB, SUB, limit=2, offset=2)
    assert rest["total"] == 3 and len(rest["submissions"]) == 1
    past = service.get(service.bob, SUB, SUB, offset=10)
    assert past["total"] == 3 and past["submissions"] == []
    ids = {s["id"] for s in first["submissions"] + rest["submissions"]}
    assert len(ids) == 3 and published["id"] not in ids  # bob sees only his own
    # The total follows the filter; a reviewer counts everyone's.
    mine = service.get(service.alice, SUB, SUB, state="published")
    assert mine["total"] == 1 and mine["submissions"][0]["id"] == published["id"]
    everyone = service.get(service.rita, SUB, SUB)
    assert everyone["total"] == 4
    s = first["submissions"][0]
    assert s["links"] == {"self": f"{SUB}/{s['id']}", "chunks": f"{SUB}/{s['id']}/chunks"}
    # The CLI's listing says how many there are in all.
    out = service.server.cli("submissions", "--server", service.server.url, "--token", service.bob, "--limit", "2")
    assert "(2 of 3 shown, --limit shows more;" in out.stdout
    out = service.server.cli("submissions", "--server", service.server.url, "--token", service.bob)
    assert "(3 shown;" in out.stdout


def test_withdraw_and_rerun_answers_fit_the_document(service: Service, published: dict[str, Any],
                                                     tiny: dict[str, Any]) -> None:
    """The submitter's actions (api/http/routes/contestant.py): a withdrawal's answer and the 409s."""
    withdraw, rerun = ONE + "/withdraw", ONE + "/rerun"
    with service.server.client(service.alice) as c:
        sid = service.contract.check(upload(c, tiny, extra_code="# withdrawn at once\n"), "POST", SUB)["id"]
        # Withdrawn before its evaluation can end (a published one could not be withdrawn any more).
        done = service.contract.check(c.post(f"{SUB}/{sid}/withdraw", json={"reason": "wrong config"}), "POST", withdraw)
        assert (done["id"], done["action"], done["state"]) == (sid, "withdraw", "withdrawn")
        assert done["links"]["self"] == f"{SUB}/{sid}" and done["quota"]["used_today"] >= 1
        for path, template in ((f"{SUB}/{sid}/withdraw", withdraw), (f"{SUB}/{sid}/rerun", rerun),
                               (f"{SUB}/{published['id']}/rerun", rerun)):
            resp = c.post(path)
            assert resp.status_code == 409, resp.text
            assert service.contract.check(resp, "POST", template)["kind"] == "conflict"
    assert service.get(service.alice, f"{SUB}/{sid}", ONE)["timestamps"]["withdrawn"] is not None


# -- the leaderboard -----------------------------------------------------------------------------


def test_leaderboard_entries_carry_links(service: Service, published: dict[str, Any]) -> None:
    board = service.get(None, BOARD, BOARD)
    verified = [e for e in board["verified"]["entries"] if e["submission_id"] == published["id"]]
    assert len(verified) == 1
    links = verified[0]["links"]
    assert links == {"self": f"{SUB}/{published['id']}", "page": f"/entries/{published['id']}",
                     "code": f"/entries/{published['id']}/code"}
    # self is the API resource: its submitter can follow it.
    assert service.get(service.alice, links["self"], ONE)["id"] == published["id"]
    claimed = board["claimed_only"]["entries"]
    assert claimed and all(e["links"]["self"] is None for e in claimed)
    first = claimed[0]["links"]
    assert first["code"].startswith("https://") and first["code"].endswith("/" + claimed[0]["folder"])
    with service.server.client() as c:
        assert c.get(first["page"]).status_code == 200
    service.get(None, BOARD, BOARD, runs="all", limit=5, offset=1, track="track_non_record_16mb")


# -- errors, health ------------------------------------------------------------------------------


def test_problem_answers_fit_the_document(service: Service, published: dict[str, Any]) -> None:
    sid = published["id"]
    c = service.contract
    with service.server.client() as anon, service.server.client(service.bob) as bob, \
            service.server.client("gc_not-a-token") as bad:
        cases = [
            (anon.get("/api/v1/quota"), "GET", "/api/v1/quota", 401),
            (bad.get(SUB), "GET", SUB, 401),
            (bob.get(f"{SUB}/{sid}"), "GET", ONE, 403),
            (bob.get(f"{SUB}/{sid}/chunks"), "GET", CHUNKS, 403),
            (bob.get(f"{SUB}/00000000-0000-0000-0000-000000000000"), "GET", ONE, 404),
            (bob.get(SUB, params={"limit": 0}), "GET", SUB, 422),
            (bob.get(f"{SUB}/{sid}/chunks", params={"attempt": "x"}), "GET", CHUNKS, 422),
            (anon.get(BOARD, params={"track": "nope"}), "GET", BOARD, 404),
            (anon.get(BOARD, params={"runs": "some"}), "GET", BOARD, 422),
            (bob.post(SUB, content=b"{}", headers={"content-type": "application/json"}), "POST", SUB, 415),
            (bob.post(SUB, files={"code": ("train_gpt.py", b"print(1)\n")}), "POST", SUB, 422),
            (bob.post(SUB, files={"artefact": ("a.ptz", b"x")}), "POST", SUB, 422),
            (bob.post(SUB, files={"config": ("eval.json", b"{nope")}), "POST", SUB, 422),
            (anon.post(SUB, files={"code": ("train_gpt.py", b"print(1)\n")}), "POST", SUB, 401),
        ]
        for resp, method, path, status in cases:
            assert resp.status_code == status, (method, path, resp.text)
            body = c.check(resp, method, path)
            assert body["status"] == status and body["type"].startswith("urn:golfcheck:problem:")
        errors = c.check(bob.get(SUB, params={"limit": 0}), "GET", SUB)["errors"]
        assert errors and errors[0]["loc"][-1] == "limit"


def test_health_answers_fit_the_document(service: Service) -> None:
    with service.server.client() as c:
        assert service.contract.check(c.get("/healthz"), "GET", "/healthz") == {"status": "ok"}
        ready = service.contract.check(c.get("/readyz"), "GET", "/readyz")
        metrics = c.get("/metrics")
    assert ready["checks"] == {"database": True, "broker": True}
    assert metrics.status_code == 200 and "text/plain" in metrics.headers["content-type"]


def test_every_json_operation_was_checked(service: Service, accepted: dict[str, Any],
                                          published: dict[str, Any], tiny: dict[str, Any]) -> None:
    """Each JSON operation of the document fits its success schema (the upload: `accepted`)."""
    sid = published["id"]
    service.get(service.alice, "/api/v1/quota", "/api/v1/quota")
    service.get(service.alice, SUB, SUB)
    service.get(service.alice, f"{SUB}/{sid}", ONE)
    service.get(service.alice, f"{SUB}/{sid}/chunks", CHUNKS)
    service.get(None, BOARD, BOARD)
    service.get(None, "/healthz", "/healthz")
    service.get(None, "/readyz", "/readyz")
    with service.server.client(service.alice) as c:
        sid2 = service.contract.check(upload(c, tiny, extra_code="# withdrawn here\n"), "POST", SUB)["id"]
        service.contract.check(c.post(f"{SUB}/{sid2}/withdraw"), "POST", ONE + "/withdraw")
    documented = {(m.upper(), p) for p, ops in service.contract.doc["paths"].items() for m, op in ops.items()
                  if any("application/json" in r.get("content", {}) for r in op["responses"].values())}
    succeeded = {(m, p) for m, p, status in service.contract.checked if status < 300}
    # A re-run answers 200 only for a submission the platform failed, which this healthy stack
    # never makes (tests/api/http/test_contestant_web.py forces one); its 409 is checked above.
    assert len(documented) == 10 and documented - succeeded <= {("POST", ONE + "/rerun")}


def test_docs_page_shows_each_named_schema(service: Service) -> None:
    with service.server.client() as c:
        page = c.get("/docs").text
    for name in service.contract.doc["components"]["schemas"]:
        assert f'id="schema-{name}"' in page, name
    # A response names its schema and links to it.
    assert '<a href="#schema-SubmissionList">SubmissionList</a>' in page


def test_a_refused_submission_fits_the_document(service: Service, tiny: dict[str, Any]) -> None:
    """A training script that downloads at run time is judged by the checks: the verdict with its
    failed rule and that rule's evidence fits the same schema as a published one."""
    fetch = "\nimport urllib.request\nurllib.request.urlretrieve('https://example.invalid/x.bin', 'x.bin')\n"
    with service.server.client(service.alice) as c:
        resp = upload(c, tiny, extra_code=fetch)
        sid = service.contract.check(resp, "POST", SUB)["id"]
        wait_final(c, sid)
    body = service.get(service.alice, f"{SUB}/{sid}", ONE)
    assert (body["state"], body["verdict"]["status"]) == ("rejected", "fail")
    network = next(r for r in body["verdict"]["rules"] if r["rule"] == "code.network")
    assert network["status"] == "fail" and network["evidence"], network
