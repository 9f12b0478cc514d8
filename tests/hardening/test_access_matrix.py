"""Access control: every route of the application × {anonymous, submitter, other submitter,
reviewer, admin}, against a live server; tokens hashed at rest, compared in constant time, and
revocable with immediate effect (bearer and browser session alike).

The route list is read from the application itself, so a route added without a row here fails
`test_matrix_covers_every_route`. The JSON API authenticates with bearer tokens; the reviewer
pages with a session cookie opened by logging in with a reviewer or admin token (a submitter's
login is refused, so for the pages a submitter is as anonymous as anyone). Admins have no route of
their own: token management is the `golfcheck token` command on the server, not an HTTP route.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from tests.support.hardening import HServer, files_for
from api.main import create_app
from api.core.settings import Settings
from api.core import auth, migrate
from api.core.db import dispose_engines, session_scope
from api.core.models import Role

PRINCIPALS = ("anonymous", "submitter", "other", "reviewer", "admin")
ALL = {p: 200 for p in PRINCIPALS}
API = {"anonymous": 401, "submitter": 200, "other": 200, "reviewer": 200, "admin": 200}
OWNER = {"anonymous": 401, "submitter": 200, "other": 403, "reviewer": 200, "admin": 200}
# Pages: 303 to the login form for anyone without a reviewer session.
PAGE = {"anonymous": 303, "submitter": 303, "other": 303, "reviewer": 200, "admin": 200}
LOGIN_REDIRECT = "/review/login"

# (method, route template) → (concrete path, expected status per principal). None: a POST with
# its own test below (it needs a form and a CSRF token).
MATRIX: dict[tuple[str, str], tuple[str, dict[str, int]] | None] = {
    ("POST", "/api/v1/submissions"): ("/api/v1/submissions", {**API, "submitter": 422, "other": 422,
                                                              "reviewer": 422, "admin": 422}),
    ("GET", "/api/v1/submissions"): ("/api/v1/submissions", API),
    ("GET", "/api/v1/submissions/{submission_id}"): ("/api/v1/submissions/{sid}", OWNER),
    ("GET", "/api/v1/submissions/{submission_id}/chunks"): ("/api/v1/submissions/{sid}/chunks", OWNER),
    ("GET", "/api/v1/quota"): ("/api/v1/quota", API),
    ("GET", "/api/v1/leaderboard"): ("/api/v1/leaderboard", ALL),
    ("GET", "/healthz"): ("/healthz", ALL),
    ("GET", "/readyz"): ("/readyz", ALL),
    ("GET", "/metrics"): ("/metrics", ALL),
    ("GET", "/openapi.json"): ("/openapi.json", ALL),
    ("GET", "/docs"): ("/docs", ALL),
    # /docs is the local API reference page; /redoc points there (issue 12: no CDN scripts).
    ("GET", "/redoc"): ("/redoc", {p: 303 for p in PRINCIPALS}),
    ("GET", "/"): ("/", {p: 303 for p in PRINCIPALS}),
    ("GET", "/leaderboard"): ("/leaderboard", ALL),
    # Public entry pages exist only for published results; this submission is still queued.
    ("GET", "/entries/{submission_id}"): ("/entries/{sid}", {p: 404 for p in PRINCIPALS}),
    ("GET", "/entries/{submission_id}/code"): ("/entries/{sid}/code", {p: 404 for p in PRINCIPALS}),
    ("GET", "/records/{record_id}"): ("/records/999999", {p: 404 for p in PRINCIPALS}),
    ("GET", "/review/login"): ("/review/login", {**ALL, "reviewer": 303, "admin": 303}),
    ("POST", "/review/login"): None,
    ("POST", "/review/logout"): None,
    ("GET", "/review"): ("/review", PAGE),
    ("GET", "/review/submissions/{submission_id}"): ("/review/submissions/{sid}", PAGE),
    # The fragment the page polls: a script, not a person, reads it, so 401 rather than a redirect.
    ("GET", "/review/submissions/{submission_id}/live"): ("/review/submissions/{sid}/live",
                                                          {**PAGE, "anonymous": 401, "submitter": 401, "other": 401}),
    ("GET", "/review/submissions/{submission_id}/code"): ("/review/submissions/{sid}/code",
                                                          {p: 303 for p in PRINCIPALS}),
    ("GET", "/review/submissions/{submission_id}/files/{file_id}"): ("/review/submissions/{sid}/files/{fid}", PAGE),
    ("POST", "/review/submissions/{submission_id}/{action}"): None,
    ("GET", "/review/audit"): ("/review/audit", PAGE),
    # Reviewer tools (api.http.pages.review_tools); their POSTs are tested in tests/e2e/test_service_reviewer_tools.py.
    ("GET", "/review/submissions/{submission_id}/diff"): ("/review/submissions/{sid}/diff", PAGE),
    ("GET", "/review/export.csv"): ("/review/export.csv", PAGE),
    ("GET", "/review/export.json"): ("/review/export.json", PAGE),
    ("POST", "/review/submissions/{submission_id}/claim"): None,
    ("POST", "/review/submissions/{submission_id}/assign"): None,
    ("POST", "/review/submissions/{submission_id}/release"): None,
    ("POST", "/review/bulk"): None,
    ("GET", "/static"): ("/static/site.css", ALL),
    # Contestant pages (/me): any role signs in there, but in this matrix only the reviewer and the
    # admin hold a browser session (opened at /review/login); the others are redirected to /me/login.
    # Someone else's submission is "not found" on them, a reviewer's included.
    ("GET", "/me"): ("/me", PAGE),
    ("GET", "/me/upload"): ("/me/upload", PAGE),
    ("GET", "/me/login"): ("/me/login", {**ALL, "reviewer": 303, "admin": 303}),
    ("GET", "/me/submissions/{submission_id}"): ("/me/submissions/{sid}", {**PAGE, "reviewer": 404, "admin": 404}),
    ("GET", "/me/submissions/{submission_id}/live"): ("/me/submissions/{sid}/live",
                                                      {"anonymous": 401, "submitter": 401, "other": 401,
                                                       "reviewer": 404, "admin": 404}),
    ("POST", "/me/login"): None,
    ("POST", "/me/logout"): None,
    ("POST", "/me/upload"): None,
    ("POST", "/me/submissions/{submission_id}/{action}"): None,
    ("POST", "/api/v1/submissions/{submission_id}/withdraw"): None,
    ("POST", "/api/v1/submissions/{submission_id}/rerun"): None,
}


def app_routes() -> set[tuple[str, str]]:
    app = create_app(Settings(data_dir=Path("/nonexistent")), embedded_worker=False)
    out: set[tuple[str, str]] = set()

    def walk(routes: Any, prefix: str) -> None:
        for r in routes:
            inner = getattr(r, "original_router", None)  # FastAPI wraps included routers
            if inner is not None:
                ctx = getattr(r, "include_context", None)
                walk(inner.routes, prefix + (getattr(ctx, "prefix", "") or ""))
                continue
            methods = getattr(r, "methods", None) or {"GET"}
            for m in methods - {"HEAD", "OPTIONS"}:
                out.add((m, prefix + r.path))

    walk(app.routes, "")
    return out


class Who:
    def __init__(self, h: HServer, name: str, token: str | None):
        self.name, self.token = name, token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=h.url, headers=headers, timeout=60, follow_redirects=False)
        self.csrf = ""

    def login(self) -> int:
        """Open a reviewer session with this token; returns the login POST's status."""
        page = self.client.get("/review/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text[:300]
        resp = self.client.post("/review/login", data={"token": self.token or "", "csrf_token": csrf.group(1),
                                                       "next": "/review"})
        if resp.status_code == 303:
            queue = self.client.get("/review")
            found = re.search(r'name="csrf_token" value="([^"]+)"', queue.text)
            self.csrf = found.group(1) if found else ""
        return resp.status_code


@pytest.fixture(scope="module")
def people(limits_server: HServer) -> Iterator[dict[str, Who]]:
    s = limits_server.server
    tokens = {"anonymous": None, "submitter": s.token("submitter", "mx-owner"), "other": s.token("submitter", "mx-other"),
              "reviewer": s.token("reviewer", "mx-reviewer"), "admin": s.token("admin", "mx-admin")}
    who = {name: Who(limits_server, name, tok) for name, tok in tokens.items()}
    for name in ("submitter", "other", "reviewer", "admin"):
        who[name].login()
    yield who
    for w in who.values():
        w.client.close()


@pytest.fixture(scope="module")
def owned(limits_server: HServer, people: dict[str, Who], tiny: dict[str, Any]) -> dict[str, Any]:
    resp = people["submitter"].client.post("/api/v1/submissions", files=files_for(tiny))
    assert resp.status_code == 202, resp.text
    sid = resp.json()["id"]
    fid = limits_server.sql("SELECT id FROM submission_files WHERE submission_id = %s AND role = 'code'", sid)[0][0]
    return {"sid": sid, "fid": fid}


def test_matrix_covers_every_route() -> None:
    routes = app_routes()
    missing = routes - set(MATRIX)
    assert not missing, f"routes without an access-matrix row: {sorted(missing)}"
    assert not set(MATRIX) - routes, f"matrix rows for routes that no longer exist: {sorted(set(MATRIX) - routes)}"


@pytest.mark.parametrize("route", [k for k, v in MATRIX.items() if v is not None], ids=lambda k: f"{k[0]} {k[1]}")
def test_route_access(route: tuple[str, str], people: dict[str, Who], owned: dict[str, Any]) -> None:
    spec = MATRIX[route]
    assert spec is not None
    path, expected = spec
    path = path.format(**owned)
    got: dict[str, int] = {}
    for name in PRINCIPALS:
        c = people[name].client
        # The upload row: an empty form, so an allowed caller gets 422 (missing field) and nothing is stored.
        resp = c.post(path, files={"track": (None, "x")}) if route[0] == "POST" else c.get(path)
        got[name] = resp.status_code
        if resp.status_code == 303 and expected[name] == 303 and route[1].startswith("/review/") \
                and route[1] != "/review/login" and not route[1].endswith("/code"):
            assert resp.headers["location"].startswith(LOGIN_REDIRECT)
        if resp.status_code in (401, 403) and route[1].startswith("/api/"):
            assert resp.headers["content-type"].startswith("application/problem+json")
    assert got == expected


def test_code_redirect_goes_to_login_or_the_file(people: dict[str, Who], owned: dict[str, Any]) -> None:
    path = f"/review/submissions/{owned['sid']}/code"
    for name in ("anonymous", "submitter", "other"):
        assert people[name].client.get(path).headers["location"].startswith(LOGIN_REDIRECT)
    for name in ("reviewer", "admin"):
        assert people[name].client.get(path).headers["location"] == \
            f"/review/submissions/{owned['sid']}/files/{owned['fid']}"


def test_listing_shows_submitters_only_their_own(people: dict[str, Who], owned: dict[str, Any]) -> None:
    ids = {n: {s["id"] for s in people[n].client.get("/api/v1/submissions").json()["submissions"]}
           for n in ("submitter", "other", "reviewer", "admin")}
    assert owned["sid"] in ids["submitter"] and owned["sid"] not in ids["other"]
    assert owned["sid"] in ids["reviewer"] and owned["sid"] in ids["admin"]


def test_login_form_post(limits_server: HServer, people: dict[str, Who]) -> None:
    """Only reviewer and admin tokens open a session; a submitter's is refused (403), a bad one 401."""
    statuses = {}
    for name in PRINCIPALS:
        fresh = Who(limits_server, name, people[name].token)
        fresh.client.headers.pop("Authorization", None)
        statuses[name] = fresh.login() if name != "anonymous" else Who(limits_server, name, "gc_nope").login()
        fresh.client.close()
    assert statuses == {"anonymous": 401, "submitter": 403, "other": 403, "reviewer": 303, "admin": 303}


def test_reviewer_action_post(people: dict[str, Who], owned: dict[str, Any]) -> None:
    path = f"/review/submissions/{owned['sid']}/note"
    for name in ("anonymous", "submitter", "other"):
        resp = people[name].client.post(path, data={"csrf_token": "x", "reason": "matrix"})
        assert resp.status_code == 303 and resp.headers["location"].startswith(LOGIN_REDIRECT)
    for name in ("reviewer", "admin"):
        w = people[name]
        assert w.client.post(path, data={"csrf_token": "wrong", "reason": "matrix"}).status_code == 403
        resp = w.client.post(path, data={"csrf_token": w.csrf, "reason": f"matrix note by {name}"})
        assert resp.status_code == 303 and "done=note" in resp.headers["location"]


def test_submitter_actions_are_the_owner_s(people: dict[str, Who], owned: dict[str, Any]) -> None:
    """Withdraw and re-run (REST): only the submitter; reviewers have their own actions. The owner's
    own withdraw and re-run are tested in tests/api/http/test_contestant_web.py (they change state)."""
    for action, owner in (("withdraw", None), ("rerun", 409)):  # the owned submission is queued, not failed
        path = f"/api/v1/submissions/{owned['sid']}/{action}"
        got = {n: people[n].client.post(path).status_code for n in PRINCIPALS if n != "submitter" or owner}
        assert got == {"anonymous": 401, "other": 403, "reviewer": 403, "admin": 403,
                       **({"submitter": owner} if owner else {})}


def test_contestant_page_posts_need_a_session(people: dict[str, Who], owned: dict[str, Any]) -> None:
    for path in ("/me/upload?csrf_token=x", f"/me/submissions/{owned['sid']}/withdraw"):
        for name in ("anonymous", "submitter", "other"):
            resp = people[name].client.post(path, data={"csrf_token": "x"})
            assert resp.status_code == 303 and resp.headers["location"].startswith("/me/login"), (path, name)
    # A reviewer's session opens the page, but the submission is not theirs to withdraw.
    w = people["reviewer"]
    resp = w.client.post(f"/me/submissions/{owned['sid']}/withdraw", data={"csrf_token": w.csrf})
    assert resp.status_code == 404


def test_logout_post(limits_server: HServer) -> None:
    s = limits_server.server
    w = Who(limits_server, "reviewer", s.token("reviewer", "mx-logout"))
    w.client.headers.pop("Authorization", None)
    assert w.login() == 303
    assert w.client.post("/review/logout", data={"csrf_token": "wrong"}).status_code == 403
    assert w.client.get("/review").status_code == 200
    assert w.client.post("/review/logout", data={"csrf_token": w.csrf}).status_code == 303
    assert w.client.get("/review").status_code == 303
    anon = Who(limits_server, "anonymous", None)
    assert anon.client.post("/review/logout", data={"csrf_token": ""}).status_code == 303
    w.client.close()
    anon.client.close()


# -- tokens ------------------------------------------------------------------------------------------


def test_tokens_are_hashed_at_rest(limits_server: HServer, people: dict[str, Who]) -> None:
    """The database holds sha256(token) and an 8-character prefix, never a usable token; session
    cookies likewise only as their hash."""
    tables = [r[0] for r in limits_server.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    dump = "\n".join(str(row[0]) for t in tables for row in limits_server.sql(f'SELECT row_to_json(x)::text FROM "{t}" x'))
    for name in ("submitter", "other", "reviewer", "admin"):
        token = people[name].token
        assert token and token not in dump and token[3:] not in dump
        rows = limits_server.sql("SELECT prefix FROM api_tokens WHERE token_hash = %s",
                                 hashlib.sha256(token.encode()).hexdigest())
        assert rows == [(token[:11],)]
        cookie = people[name].client.cookies.get("golfcheck_session")
        if cookie:
            assert cookie not in dump
            assert limits_server.sql("SELECT count(*) FROM web_sessions WHERE id = %s",
                                     hashlib.sha256(cookie.encode()).hexdigest())[0][0] == 1


def test_token_comparison_is_constant_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`authenticate` decides with hmac.compare_digest on the stored and the presented hash."""
    s = Settings(data_dir=tmp_path)
    migrate.upgrade(s)
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    with session_scope(s) as session:
        _, _, token = auth.create_token(session, name="ct", role=Role.SUBMITTER)
    with session_scope(s) as session:
        assert auth.authenticate(session, token) is not None
        assert auth.authenticate(session, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    digest = hashlib.sha256(token.encode()).hexdigest().encode()
    assert calls == [(digest, digest)]  # the wrong token matched no row: nothing to compare
    dispose_engines()


def test_revocation_takes_effect_at_once(limits_server: HServer) -> None:
    s = limits_server.server
    token = s.token("reviewer", "mx-revoked")
    w = Who(limits_server, "reviewer", token)
    assert w.client.get("/api/v1/submissions").status_code == 200
    assert w.login() == 303 and w.client.get("/review").status_code == 200
    s.cli("token", "revoke", "--token", token, "--reason", "matrix test")
    resp = w.client.get("/api/v1/submissions")
    assert resp.status_code == 401 and resp.json()["kind"] == "invalid-token"
    # The browser session opened with the token ends with it.
    assert w.client.get("/review").status_code == 303
    audit = limits_server.sql("SELECT details FROM audit_log WHERE action = 'token.revoked' ORDER BY id DESC LIMIT 1")
    assert "matrix test" in audit[0][0]
    w.client.close()
