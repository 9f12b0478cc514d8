"""The contestant pages (/me) and the submitter's withdraw / re-run, through real HTTP against
`golfcheck serve` on PostgreSQL and Redis:

- sign-in with an API token (the reviewer pages' sessions), and what a session may open;
- the upload form gives the same answer, with the same message, as the REST upload for the same
  input, and refused input costs no quota;
- "my submissions" lists one's own, and nobody else's;
- withdraw and re-run: the rules, the quota, the audit rows, and who may act, on the page and
  over REST (POST /api/v1/submissions/{id}/withdraw | rerun).

A queued submission stays queued here (the server runs no worker): a platform failure is made
with the worker's own calls (`api.core.lifecycle.claim` + `platform_fault`). Withdrawing a running
evaluation, with real Celery workers, is the last test.
"""

from __future__ import annotations

import html
import io
import json
import re
import tarfile
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import psycopg
import pytest
from api.core import lifecycle
from api.core.settings import Settings
from tests.support.service import (
    REDIS_URL,
    TINY_CONFIG,
    Proc,
    Server,
    base_env,
    start_server,
    start_worker,
    wait_until,
)

pytestmark = pytest.mark.services


# -- helpers -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pg_url: str, redis_prefix: str) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("contestant-web")
    env = base_env(data, GOLFCHECK_DATABASE_URL=pg_url, GOLFCHECK_BROKER_URL=REDIS_URL,
                   GOLFCHECK_BROKER_PREFIX=redis_prefix + "web:")
    srv = start_server(env, data, "--no-worker")  # nothing evaluates: submissions stay where the test puts them
    try:
        yield srv
    finally:
        srv.proc.stop()


def sql(server: Server, query: str, *params: Any) -> list[tuple[Any, ...]]:
    url = server.env["GOLFCHECK_DATABASE_URL"].replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return list(cur.fetchall()) if cur.description else []


def user_name(server: Server, token: str) -> str:
    rows = sql(server, "SELECT u.name FROM users u JOIN api_tokens t ON t.user_id = u.id WHERE t.prefix = %s",
               token[:11])
    return str(rows[0][0])


def _hidden(page: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert m, f"no hidden field {name} in the page"
    return html.unescape(m.group(1))


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


class Person:
    """A browser-like client of the pages: cookies, the login form, CSRF tokens from the pages."""

    def __init__(self, server: Server, token: str):
        self.server, self.token = server, token
        self.web = httpx.Client(base_url=server.url, timeout=60, headers={"Origin": server.url})
        self.api = server.client(token)

    def login(self, token: str | None = None, next_path: str = "/me") -> httpx.Response:
        form = self.web.get("/me/login", params={"next": next_path})
        assert form.status_code == 200, form.text
        return self.web.post("/me/login", data={"token": token or self.token, "next": next_path,
                                                "csrf_token": _hidden(form.text, "csrf_token")})

    def upload_action(self) -> str:
        page = self.web.get("/me/upload")
        assert page.status_code == 200, page.text
        m = re.search(r'id="upload-form"[^>]*action="([^"]+)"', page.text)
        assert m, "no upload form"
        return html.unescape(m.group(1))

    def page_upload(self, files: list[tuple[str, Any]], data: dict[str, str] | None = None) -> httpx.Response:
        return self.web.post(self.upload_action(), files=files, data=data or {})

    def act(self, sid: str, action: str, reason: str = "") -> httpx.Response:
        page = self.web.get(f"/me/submissions/{sid}")
        assert page.status_code == 200, page.text
        return self.web.post(f"/me/submissions/{sid}/{action}",
                             data={"csrf_token": _hidden(page.text, "csrf_token"), "reason": reason})

    def quota_used(self) -> int:
        return int(self.api.get("/api/v1/quota").json()["used_today"])

    def close(self) -> None:
        self.web.close()
        self.api.close()


@pytest.fixture(scope="module")
def alice(server: Server) -> Iterator[Person]:
    p = Person(server, server.token("submitter", f"alice-{uuid.uuid4().hex[:6]}"))
    assert p.login().status_code == 303
    yield p
    p.close()


@pytest.fixture(scope="module")
def bob(server: Server) -> Iterator[Person]:
    p = Person(server, server.token("submitter", f"bob-{uuid.uuid4().hex[:6]}"))
    assert p.login().status_code == 303
    yield p
    p.close()


def _parts(tiny: dict[str, Any], *, tag: str = "", **override: Any) -> list[tuple[str, Any]]:
    """The tiny record as separate multipart file fields (one unique code comment per call)."""
    fields = {
        "artifact": ("final_model.int6.ptz", tiny["artifact"].read_bytes()),
        "code": ("train_gpt.py", tiny["code"].read_bytes() + f"# {tag or uuid.uuid4().hex}\n".encode()),
        "config": ("eval.json", json.dumps(TINY_CONFIG).encode()),
        "submission_json": ("submission.json", json.dumps(tiny["claim"]).encode()),
        "logs": ("train_seed0.log", tiny["log"].read_bytes()),
    }
    fields.update(override)
    return [(k, v) for k, v in fields.items() if v is not None]


def _bundle(tiny: dict[str, Any], tag: str, drop: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for path in sorted(Path(tiny["dir"]).iterdir()):
            if path.name in drop:
                continue
            data = path.read_bytes() + (f"# {tag}\n".encode() if path.name == "train_gpt.py" else b"")
            info = tarfile.TarInfo(f"{tiny['dir'].name}/{path.name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _upload_error(page: str) -> str:
    m = re.search(r'id="upload-error"[^>]*>(.*?)</div>', page, re.S)
    assert m, "the form shows no error"
    return _text(m.group(1))


def _sid_from(resp: httpx.Response) -> str:
    m = re.match(r"/me/submissions/([0-9a-f-]{36})\?done=", resp.headers.get("location", ""))
    assert m, f"not redirected to a submission page: {resp.status_code} {resp.headers.get('location')}"
    return m.group(1)


# -- sign-in -----------------------------------------------------------------------------------------


def test_anonymous_is_sent_to_the_login_form(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as anon:
        for path in ("/me", "/me/upload", f"/me/submissions/{uuid.uuid4()}"):
            r = anon.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/me/login?next="), (path, r.headers)
        r = anon.post(f"/me/submissions/{uuid.uuid4()}/withdraw", data={"csrf_token": "x"})
        assert r.status_code == 303 and r.headers["location"].startswith("/me/login")
        # The upload is refused from its headers: the redirect comes without reading the files.
        r = anon.post("/me/upload?csrf_token=x", files=[("artifact", ("a.ptz", b"x" * 1000))])
        assert r.status_code == 303 and r.headers["location"].startswith("/me/login")


def test_login_with_a_token_and_what_the_session_opens(server: Server) -> None:
    p = Person(server, server.token("submitter", f"carol-{uuid.uuid4().hex[:6]}"))
    try:
        bad = p.login(token="gc_" + "x" * 43)
        assert bad.status_code == 401 and "Unknown, revoked or expired token" in bad.text
        assert p.web.get("/me").status_code == 303
        ok = p.login(next_path="/me/upload")
        assert ok.status_code == 303 and ok.headers["location"] == "/me/upload"
        page = p.web.get("/me")
        assert page.status_code == 200 and "My submissions" in page.text and "Signed in as" in page.text
        # A submitter's session is no reviewer session: the reviewer pages still ask for a reviewer token.
        review = p.web.get("/review")
        assert review.status_code == 303 and review.headers["location"].startswith("/review/login")
        assert p.web.get("/review/audit").status_code == 303
        # A login form cannot be turned into a redirect off this site or into the reviewer pages.
        for evil in ("https://evil.example/", "/me/%2e%2e/review", "//evil.example/me"):
            assert p.web.get("/me/login", params={"next": evil}).headers["location"] == "/me", evil
        [(n,)] = sql(server, "SELECT count(*) FROM audit_log WHERE action = 'web.login' AND actor = %s",
                     f"user:{user_name(server, p.token)}")
        assert n >= 1
        page = p.web.get("/me")
        logout = p.web.post("/me/logout", data={"csrf_token": _hidden(page.text, "csrf_token")})
        assert logout.status_code == 303 and p.web.get("/me").status_code == 303
    finally:
        p.close()


def test_a_reviewer_signs_in_here_too_and_keeps_reviewer_pages(server: Server) -> None:
    p = Person(server, server.token("reviewer", f"rita-{uuid.uuid4().hex[:6]}"))
    try:
        assert p.login().status_code == 303
        assert p.web.get("/me").status_code == 200
        assert p.web.get("/review").status_code == 200
    finally:
        p.close()


# -- upload: the same validation as the API -------------------------------------------------------------


BAD_INPUTS = {
    "code missing": lambda t: _parts(t, code=None),
    "config not JSON": lambda t: _parts(t, config=("eval.json", b"{not json")),
    "config unknown key": lambda t: _parts(t, config=("eval.json", json.dumps({"model": {"num_layer": 2}}).encode())),
    "code not UTF-8": lambda t: _parts(t, code=("train_gpt.py", b"print('x')\n\xff\xfe\n")),
    "bundle not an archive": lambda t: [("bundle", ("rec.tar.gz", b"this is not an archive at all"))],
    "bundle without artifact": lambda t: [("bundle", ("rec.tar.gz", _bundle(t, "noart", drop=("final_model.int6.ptz",))))],
    "bundle and artifact": lambda t: [("bundle", ("rec.tar.gz", _bundle(t, "both"))),
                                      ("artifact", ("final_model.int6.ptz", t["artifact"].read_bytes()))],
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_refused_upload_same_status_and_message_as_the_api(alice: Person, tiny: dict[str, Any], case: str) -> None:
    files = BAD_INPUTS[case](tiny)
    used = alice.quota_used()
    api = alice.api.post("/api/v1/submissions", files=files)
    page = alice.page_upload(files)
    assert api.status_code in (413, 415, 422, 400), api.text
    problem = api.json()
    assert page.status_code == api.status_code
    shown = _upload_error(page.text)
    assert problem["detail"] in shown, (problem["detail"], shown)
    assert "Nothing was uploaded" in shown
    assert alice.quota_used() == used  # refused input costs no quota, on either path


def test_refused_track_names_the_track_field(alice: Person, tiny: dict[str, Any]) -> None:
    files = _parts(tiny)
    api = alice.api.post("/api/v1/submissions", files=files, data={"track": "track_1hour"})
    page = alice.page_upload(files, {"track": "track_1hour"})
    assert api.status_code == page.status_code == 422
    assert api.json()["detail"] in _upload_error(page.text)
    # The field the API names is the one the page marks and links to.
    assert api.json()["field"] == "track"
    assert 'href="#f-track"' in page.text and re.search(r'id="f-track"[^>]*aria-invalid="true"', page.text)


def test_empty_form_fields_count_as_not_sent(alice: Person, tiny: dict[str, Any]) -> None:
    """What a browser posts for inputs left empty (file parts without a name or bytes, an empty
    track) is read as absent: a bundle with every other input empty is accepted like a bundle alone."""
    tag = uuid.uuid4().hex
    # Built by hand: httpx leaves out an empty file name, a browser sends `filename=""`.
    boundary = "----BrowserFormBoundary" + tag[:16]
    body = b""
    parts = [("folder", ""), ("bundle", "rec.tar.gz"), ("artifact", ""), ("code", ""), ("config", ""),
             ("submission_json", ""), ("logs", ""), ("track", None)]
    for name, filename in parts:
        data = _bundle(tiny, tag) if name == "bundle" else b""
        head = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            head += f'; filename="{filename}"\r\nContent-Type: application/octet-stream'
        body += f"--{boundary}\r\n{head}\r\n\r\n".encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    resp = alice.web.post(alice.upload_action(), content=body,
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    sid = _sid_from(resp)
    view = alice.api.get(f"/api/v1/submissions/{sid}").json()
    roles = sorted(f["role"] for f in view["files"])
    assert roles.count("artifact") == 1 and roles.count("code") == 1 and "submission_json" in roles
    assert view["track"] == "track_10min_16mb"  # from submission.json, since the track was left empty
    assert view["folder"] == tiny["dir"].name


def test_a_chosen_folder_uploads_like_its_bundle(alice: Person, tiny: dict[str, Any]) -> None:
    tag = uuid.uuid4().hex
    folder = []
    for path in sorted(Path(tiny["dir"]).iterdir()):
        data = path.read_bytes() + (f"# {tag}\n".encode() if path.name == "train_gpt.py" else b"")
        folder.append(("folder", (f"{tiny['dir'].name}/{path.name}", data)))
    folder.append(("folder", (f"{tiny['dir'].name}/.DS_Store", b"clutter")))
    sid = _sid_from(alice.page_upload(folder))
    via_folder = alice.api.get(f"/api/v1/submissions/{sid}").json()
    via_bundle = alice.api.post("/api/v1/submissions", files=[("bundle", ("r.tar.gz", _bundle(tiny, tag)))])
    # Same files, same config: the REST bundle finds the folder upload as its duplicate.
    assert via_bundle.status_code == 200 and via_bundle.json()["id"] == sid, via_bundle.text
    names = {f["filename"] for f in via_folder["files"]}
    assert {"final_model.int6.ptz", "train_gpt.py"} <= names and ".DS_Store" not in " ".join(names)
    # A folder is checked like a bundle, and named as what it is.
    no_code = [f for f in folder if not f[1][0].endswith("train_gpt.py")]
    page = alice.page_upload(no_code)
    assert page.status_code == 422 and "the folder must hold the training script train_gpt.py" in _upload_error(page.text)
    both = alice.page_upload(folder + [("bundle", ("r.tar.gz", _bundle(tiny, tag)))])
    assert both.status_code == 422 and "not several" in _upload_error(both.text)


def test_the_folder_field_is_the_page_s_alone(alice: Person, tiny: dict[str, Any]) -> None:
    """The REST upload keeps its documented fields: `folder` there is an unknown field, as before."""
    r = alice.api.post("/api/v1/submissions", files=[("folder", ("rec/train_gpt.py", b"print(1)\n"))])
    assert r.status_code == 422 and r.json()["kind"] == "unknown-field"


def test_forged_upload_is_refused_before_reading(alice: Person, tiny: dict[str, Any]) -> None:
    used = alice.quota_used()
    r = alice.web.post("/me/upload?csrf_token=forged", files=_parts(tiny))
    assert r.status_code == 403 and "reload the upload page" in r.text
    other_site = alice.web.post(alice.upload_action(), files=_parts(tiny), headers={"Origin": "https://evil.example"})
    assert other_site.status_code == 403
    assert alice.quota_used() == used


# -- my submissions ------------------------------------------------------------------------------------


def test_my_submissions_lists_mine_and_not_others(alice: Person, bob: Person, tiny: dict[str, Any]) -> None:
    name = f"Alice run {uuid.uuid4().hex[:6]}"
    files = _parts(tiny, submission_json=("submission.json", json.dumps({**tiny["claim"], "name": name}).encode()))
    sid = _sid_from(alice.page_upload(files))
    page = alice.web.get(f"/me/submissions/{sid}?done=uploaded")
    assert page.status_code == 200 and name in page.text and 'id="done"' in page.text
    assert re.search(r'id="state"[^>]*>queued<', page.text)
    listing = alice.web.get("/me").text
    assert f'href="/me/submissions/{sid}"' in listing and name in listing
    # A queued row keeps the list reloading itself (live progress without a script).
    assert '<meta http-equiv="refresh" content="5">' in listing
    # Bob sees neither the row nor the page, and cannot act on it; with nothing of his in
    # flight, his list does not reload.
    bob_listing = bob.web.get("/me").text
    assert sid not in bob_listing and 'http-equiv="refresh"' not in bob_listing
    assert bob.web.get(f"/me/submissions/{sid}").status_code == 404
    assert bob.web.get(f"/me/submissions/{sid}/live").status_code == 404
    page_b = bob.web.get("/me")
    forged = bob.web.post(f"/me/submissions/{sid}/withdraw", data={"csrf_token": _hidden(page_b.text, "csrf_token")})
    assert forged.status_code == 404
    assert alice.api.get(f"/api/v1/submissions/{sid}").json()["state"] == "queued"


# -- withdraw and re-run -------------------------------------------------------------------------------


def _fail_by_platform(server: Server, sid: str) -> None:
    """What a worker does when the platform fails a stage for the last time."""
    settings = Settings.from_env({**server.env, "GOLFCHECK_MAX_ATTEMPTS": "1"})
    claim = lifecycle.claim(settings, sid, "checks", worker="test-host")
    assert claim is not None
    assert lifecycle.platform_fault(settings, claim, "simulated: the scratch disk filled up") is not None


def _audit(server: Server, sid: str, action: str) -> list[dict[str, Any]]:
    rows = sql(server, "SELECT actor, details FROM audit_log WHERE submission_id = %s AND action = %s ORDER BY id",
               sid, action)
    return [{"actor": a, **json.loads(d)} for a, d in rows]


def test_withdraw_a_queued_submission_on_the_page(alice: Person, bob: Person, tiny: dict[str, Any],
                                                   server: Server) -> None:
    files = _parts(tiny)
    sid = _sid_from(alice.page_upload(files))
    used = alice.quota_used()
    # Someone else, over REST: refused, nothing written.
    r = bob.api.post(f"/api/v1/submissions/{sid}/withdraw")
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    assert httpx.post(f"{server.url}/api/v1/submissions/{sid}/withdraw").status_code == 401
    done = alice.act(sid, "withdraw", "wrong config")
    assert done.status_code == 303 and done.headers["location"] == f"/me/submissions/{sid}?done=withdraw"
    page = alice.web.get(done.headers["location"]).text
    assert re.search(r'id="state"[^>]*>withdrawn<', page) and "Withdrawn: it will not be evaluated" in page
    assert 'id="withdraw-form"' not in page  # final: no more actions
    [row] = _audit(server, sid, "contestant.withdraw")
    assert row["reason"] == "wrong config" and row["before"]["state"] == "queued" and row["after"]["state"] == "withdrawn"
    assert alice.quota_used() == used  # the upload stays counted
    again = alice.api.post(f"/api/v1/submissions/{sid}/withdraw")
    assert again.status_code == 409 and again.json()["detail"] == "the submission is already withdrawn"
    assert alice.api.post(f"/api/v1/submissions/{sid}/rerun").status_code == 409
    # The same files again are a new submission (and a new upload on the quota).
    resp = alice.api.post("/api/v1/submissions", files=files)
    assert resp.status_code == 202 and resp.json()["id"] != sid
    assert alice.quota_used() == used + 1


def test_rerun_only_after_a_platform_failure_and_with_quota(server: Server, tiny: dict[str, Any]) -> None:
    dana = Person(server, server.token("submitter", f"dana-{uuid.uuid4().hex[:6]}"))
    try:
        assert dana.login().status_code == 303
        name = user_name(server, dana.token)
        sql(server, "UPDATE users SET daily_quota = 2 WHERE name = %s", name)
        a = dana.api.post("/api/v1/submissions", files=_parts(tiny)).json()["id"]
        b = dana.api.post("/api/v1/submissions", files=_parts(tiny)).json()["id"]
        assert dana.quota_used() == 2
        # Not failed: the owner cannot re-run it (a reviewer can; the detail says so).
        r = dana.api.post(f"/api/v1/submissions/{b}/rerun", json={"reason": "again"})
        assert r.status_code == 409 and "still in the pipeline" in r.json()["detail"]
        _fail_by_platform(server, a)
        assert dana.quota_used() == 1  # a platform failure costs nobody their quota
        c = dana.api.post("/api/v1/submissions", files=_parts(tiny)).json()["id"]
        assert dana.quota_used() == 2
        page = dana.web.get(f"/me/submissions/{a}").text
        assert 'id="rerun-form"' in page and "scratch disk filled up" in page
        # Quota used up: the re-run is refused on the page and over REST, and nothing changes.
        refused = dana.act(a, "rerun")
        assert refused.status_code == 429 and "used all 2 submissions of today" in refused.text
        r = dana.api.post(f"/api/v1/submissions/{a}/rerun")
        assert r.status_code == 429 and r.json()["kind"] == "quota-exceeded"
        assert dana.api.get(f"/api/v1/submissions/{a}").json()["state"] == "failed"
        assert _audit(server, a, "contestant.rerun") == []
        # Withdrawing gives no quota back.
        assert dana.api.post(f"/api/v1/submissions/{c}/withdraw").json()["state"] == "withdrawn"
        assert dana.quota_used() == 2
        sql(server, "UPDATE users SET daily_quota = 3 WHERE name = %s", name)
        # Someone else may not re-run it.
        assert Person(server, server.token("submitter")).api.post(f"/api/v1/submissions/{a}/rerun").status_code == 403
        done = dana.act(a, "rerun", "disk replaced")
        assert done.status_code == 303
        view = dana.api.get(f"/api/v1/submissions/{a}").json()
        assert view["state"] == "queued" and view["verdict"]["status"] == "pending"
        assert dana.quota_used() == 3  # charged like an upload
        [row] = _audit(server, a, "contestant.rerun")
        assert row["actor"] == f"user:{name}" and row["reason"] == "disk replaced" and row["before"]["state"] == "failed"
        # Queued again, so the rules apply anew: it can be withdrawn now, not re-run.
        assert dana.api.post(f"/api/v1/submissions/{a}/rerun").status_code == 409
    finally:
        dana.close()


def test_uploading_a_failed_submission_again_counts_like_a_rerun(server: Server, tiny: dict[str, Any]) -> None:
    """The API's older way to retry a failed submission (send the same files again) is charged like
    the owner's re-run, also when the failed submission is from an earlier day."""
    fay = Person(server, server.token("submitter", f"fay-{uuid.uuid4().hex[:6]}"))
    try:
        files = _parts(tiny)
        sid = fay.api.post("/api/v1/submissions", files=files).json()["id"]
        _fail_by_platform(server, sid)
        sql(server, "UPDATE submissions SET created_at = created_at - interval '2 days' WHERE id = %s", sid)
        assert fay.quota_used() == 0
        again = fay.api.post("/api/v1/submissions", files=files)
        assert again.status_code == 200 and again.json()["id"] == sid and again.json()["state"] == "queued"
        assert fay.quota_used() == 1
        assert [r["reason"] for r in _audit(server, sid, "contestant.rerun")] == ["the same files uploaded again"]
    finally:
        fay.close()


def test_rest_actions_are_in_the_openapi_document(server: Server) -> None:
    doc = httpx.get(f"{server.url}/openapi.json").json()
    for action in ("withdraw", "rerun"):
        op = doc["paths"][f"/api/v1/submissions/{{submission_id}}/{action}"]["post"]
        assert op["security"] == [{"bearer": []}]
        assert {"200", "401", "403", "404", "409", "429"} <= set(op["responses"])
        assert op["responses"]["409"]["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert ok.endswith("/ActionResult")
    assert "ActionResult" in doc["components"]["schemas"]


# -- withdrawing a running evaluation (real workers) ----------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pg_url: str, redis_prefix: str) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("contestant-stack")
    env = base_env(data, GOLFCHECK_DATABASE_URL=pg_url, GOLFCHECK_BROKER_URL=REDIS_URL,
                   GOLFCHECK_BROKER_PREFIX=redis_prefix + "stack:",
                   GOLFCHECK_EVAL_CHUNK_DELAY_S="0.5")  # slow enough to act in the middle of an evaluation
    procs: list[Proc] = []
    srv = start_server(env, data, "--no-worker")
    try:
        procs.append(start_worker(env, data, "checks"))
        procs.append(start_worker(env, data, "eval"))
        yield srv
    finally:
        for p in procs:
            p.stop()
        srv.proc.stop()


def test_withdrawing_a_running_evaluation_stops_it_unpublished(stack: Server, tiny: dict[str, Any]) -> None:
    erin = Person(stack, stack.token("submitter", f"erin-{uuid.uuid4().hex[:6]}"))
    try:
        assert erin.login().status_code == 303
        sid = erin.api.post("/api/v1/submissions", files=_parts(tiny)).json()["id"]

        def evaluating() -> dict[str, Any] | None:
            body = erin.api.get(f"/api/v1/submissions/{sid}").json()
            running = body["state"] == "evaluating" and body["progress"]["chunks_done"] >= 1
            return body if running or body["state"] in ("published", "scored", "rejected", "failed") else None

        body = wait_until(evaluating, 300, "the evaluation to be under way")
        assert body["state"] == "evaluating", (body["state"], body["verdict"])
        live = erin.web.get(f"/me/submissions/{sid}/live")
        assert live.status_code == 200 and 'id="eval-progress"' in live.text and "worker" not in _text(live.text)
        done = erin.act(sid, "withdraw")
        assert done.status_code == 303
        # The eval worker is free again once it has finished with the next submission: by then the
        # withdrawn evaluation has certainly ended, and it must not have stored or published anything.
        nxt = erin.api.post("/api/v1/submissions", files=_parts(tiny)).json()["id"]
        wait_until(lambda: erin.api.get(f"/api/v1/submissions/{nxt}").json()["state"] in
                   ("published", "scored", "rejected", "failed"), 600, "the next submission to be evaluated")
        view = erin.api.get(f"/api/v1/submissions/{sid}").json()
        assert view["state"] == "withdrawn" and view["measured"] is None
        assert [a["outcome"] for a in view["attempts"] if a["stage"] == "eval"] == ["withdrawn"]
        assert sql(stack, "SELECT count(*) FROM results WHERE submission_id = %s", sid) == [(0,)]
        assert "published" not in [h["to"] for h in view["history"]]
        # A published submission stays: its author cannot withdraw it.
        assert erin.api.get(f"/api/v1/submissions/{nxt}").json()["state"] == "published"
        r = erin.api.post(f"/api/v1/submissions/{nxt}/withdraw")
        assert r.status_code == 409 and "part of the leaderboard's history" in r.json()["detail"]
    finally:
        erin.close()
