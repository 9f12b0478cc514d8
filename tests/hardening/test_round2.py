"""Regression tests for the second red-team round (issue 12, "Findings to close" 1-7) and for
refusing bad input before it costs quota (issue 13, contestant item 3). Everything goes through
real HTTP against `golfcheck serve` on PostgreSQL.

- `r2`: an API without a worker (submissions stay queued), with short upload deadlines so the
  slow-client tests finish in seconds;
- `corpus_server` (conftest): the embedded shape, whose in-process worker runs the checks, for
  what needs rule evidence or attempts.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import time
import uuid
from typing import Any, Iterator

import httpx
import pytest
from tests.support.hardening import PROBLEM, HServer, assert_no_orphans, files_for, start_hserver, stop_hserver, temp_files, unique_code
from tests.support.service import TINY_CONFIG, wait_final, wait_until

pytestmark = pytest.mark.services

BOUNDARY = "r2boundary0123456789"
UPLOAD_ENV = {"GOLFCHECK_UPLOAD_DEADLINE_S": "6", "GOLFCHECK_UPLOAD_MIN_RATE_BPS": "1000",
              "GOLFCHECK_UPLOAD_RATE_GRACE_S": "2", "GOLFCHECK_HEAD_TIMEOUT_S": "3",
              "GOLFCHECK_DAILY_QUOTA": "50"}


@pytest.fixture(scope="module")
def r2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HServer]:
    h = start_hserver(tmp_path_factory.mktemp("r2-data"), "--no-worker", **UPLOAD_ENV)
    yield h
    stop_hserver(h)


@pytest.fixture(scope="module")
def tokens(r2: HServer) -> dict[str, str]:
    s = r2.server
    return {"a": s.token("submitter", "r2-alice"), "b": s.token("submitter", "r2-bob"),
            "reviewer": s.token("reviewer", "r2-reviewer")}


def client(h: HServer, token: str | None = None, **kw: Any) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=h.url, headers=headers, timeout=60, **kw)


def is_problem(resp: httpx.Response, status: int | tuple[int, ...]) -> None:
    statuses = (status,) if isinstance(status, int) else status
    assert resp.status_code in statuses, (resp.status_code, resp.text[:500])
    assert resp.headers["content-type"].startswith(PROBLEM), resp.headers["content-type"]


def part(name: str, filename: str | None, data: bytes, ctype: str = "application/octet-stream") -> bytes:
    disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    return (f"--{BOUNDARY}\r\nContent-Disposition: {disp}\r\nContent-Type: {ctype}\r\n\r\n").encode() + data + b"\r\n"


def raw_request(h: HServer, head: str) -> socket.socket:
    host, port = h.url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=30)
    s.sendall(head.encode())
    return s


def upload_head(h: HServer, token: str, length: int) -> str:
    host = h.url.removeprefix("http://")
    return (f"POST /api/v1/submissions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n"
            "Connection: close\r\n\r\n")


def read_response(s: socket.socket, timeout: float) -> bytes:
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            data = s.recv(65536)
            if not data:
                break
            out += data
    except (socket.timeout, ConnectionResetError):
        pass
    return out


def submission_count(h: HServer, user: str) -> int:
    return int(h.sql("SELECT count(*) FROM submissions s JOIN users u ON u.id = s.submitter_id WHERE u.name = %s",
                     user)[0][0])


def login(c: httpx.Client, token: str, next_url: str = "/review") -> httpx.Response:
    page = c.get("/review/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf, page.text[:300]
    return c.post("/review/login", data={"token": token, "csrf_token": csrf.group(1), "next": next_url})


# -- 1. blob lifetime under concurrency --------------------------------------------------------------


def test_abort_never_deletes_a_blob_a_committed_submission_uses(r2: HServer, tokens: dict[str, str],
                                                               tiny: dict[str, Any]) -> None:
    """B streams a code part, stalls; A uploads the same script and commits; B disconnects. A's
    blob must survive B's abort (it was deleted as "created by B")."""
    code = unique_code(tiny, "race")
    sha = hashlib.sha256(code).hexdigest()
    blob = r2.data_dir / "blobs" / sha[:2] / sha[2:4] / sha
    prefix = part("code", "train_gpt.py", code, "text/x-python") + (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="logs"; filename="x.log"\r\n\r\npartial').encode()
    b = raw_request(r2, upload_head(r2, tokens["b"], len(prefix) + 10_000))
    try:
        b.sendall(prefix)
        # B's code part is complete (the next part began), so B's request stored the blob.
        wait_until(blob.is_file, 30, "B's code blob to be stored")
        with client(r2, tokens["a"]) as a:
            resp = a.post("/api/v1/submissions", files=files_for(tiny, code=code))
        assert resp.status_code == 202, resp.text
        sid = resp.json()["id"]
    finally:
        b.close()
    # B's abort ran once its open temp file (the stalled logs part) is gone.
    wait_until(lambda: temp_files(r2.data_dir) == [], 30, "B's upload to be aborted")
    time.sleep(0.5)  # the abort's blob clean-up runs right after its temp files go
    assert blob.is_file(), "the abort of B deleted the blob A's committed submission references"
    for (file_sha,) in r2.sql("SELECT sha256 FROM submission_files WHERE submission_id = %s", sid):
        assert (r2.data_dir / "blobs" / file_sha[:2] / file_sha[2:4] / file_sha).is_file()
    assert_no_orphans(r2.sql, r2.data_dir)


def test_upload_that_deduplicated_against_an_aborted_one_still_commits(r2: HServer, tokens: dict[str, str],
                                                                       tiny: dict[str, Any]) -> None:
    """B stores a script and stalls; A streams the same script (deduplicated against B's file) and
    stalls; B disconnects and its abort removes the file nobody references yet; A then finishes.
    A's submission must commit with its file in place (it was a 503 "vanished" before)."""
    code = unique_code(tiny, "dedup-abort")
    sha = hashlib.sha256(code).hexdigest()
    blob = r2.data_dir / "blobs" / sha[:2] / sha[2:4] / sha
    stall = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="logs"; filename="x.log"\r\n\r\n'
             "partial").encode()
    head_b = part("code", "train_gpt.py", code, "text/x-python") + stall
    b = raw_request(r2, upload_head(r2, tokens["b"], len(head_b) + 10_000))
    b.sendall(head_b)
    wait_until(blob.is_file, 30, "B's code blob to be stored")
    rest = (b"\r\n" + part("artifact", "final_model.int6.ptz", tiny["artifact"].read_bytes())
            + part("config", "eval.json", tiny["config"].read_bytes(), "application/json")
            + f"--{BOUNDARY}--\r\n".encode())
    head_a = part("code", "train_gpt.py", code, "text/x-python") + stall
    a = raw_request(r2, upload_head(r2, tokens["a"], len(head_a) + len(rest)))
    try:
        a.sendall(head_a)
        # Both requests hold their script part and have a stalled logs part open: 4 temp files.
        wait_until(lambda: len(temp_files(r2.data_dir)) == 4, 30, "A's script part to be stored")
        b.close()
        wait_until(lambda: not blob.exists(), 30, "B's abort to remove the file nobody references yet")
        a.sendall(rest)
        reply = read_response(a, 30)
    finally:
        a.close()
        b.close()
    assert reply.startswith(b"HTTP/1.1 202"), reply[:400]
    assert blob.is_file()
    wait_until(lambda: temp_files(r2.data_dir) == [], 30, "A's holds to be released")
    assert_no_orphans(r2.sql, r2.data_dir)


def test_abort_still_removes_what_nobody_references(r2: HServer, tokens: dict[str, str], tiny: dict[str, Any]) -> None:
    code = unique_code(tiny, "lonely")
    sha = hashlib.sha256(code).hexdigest()
    blob = r2.data_dir / "blobs" / sha[:2] / sha[2:4] / sha
    prefix = part("code", "train_gpt.py", code, "text/x-python") + (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="logs"; filename="x.log"\r\n\r\npartial').encode()
    b = raw_request(r2, upload_head(r2, tokens["b"], len(prefix) + 10_000))
    b.sendall(prefix)
    wait_until(blob.is_file, 30, "B's code blob to be stored")
    b.close()
    wait_until(lambda: not blob.exists(), 30, "the unreferenced blob to be removed")
    assert_no_orphans(r2.sql, r2.data_dir)


# -- 2. bounded parts -------------------------------------------------------------------------------


def test_thousands_of_log_parts_are_refused_naming_the_limit(r2: HServer, tokens: dict[str, str],
                                                            tiny: dict[str, Any]) -> None:
    before = submission_count(r2, "r2-alice")
    files = files_for(tiny, code=unique_code(tiny, "parts")) + [("logs", (f"{i}.log", b"", "text/plain"))
                                                                for i in range(3000)]
    with client(r2, tokens["a"]) as a:
        resp = a.post("/api/v1/submissions", files=files)
    is_problem(resp, (413, 422))
    body = resp.json()
    assert "100" in body["detail"] and "logs" in body["detail"], body
    assert body.get("limit_parts") == 100
    assert submission_count(r2, "r2-alice") == before
    assert_no_orphans(r2.sql, r2.data_dir)


# -- 3. no 500s ------------------------------------------------------------------------------------------


def test_huge_ids_and_long_boundaries_get_problem_4xx(r2: HServer, tokens: dict[str, str]) -> None:
    huge = "999999999999999999999999999"
    with client(r2) as anon:
        is_problem(anon.get(f"/records/{huge}"), (404, 422))
        is_problem(anon.get("/records/2147483648"), (404, 422))
    with client(r2, follow_redirects=False) as rev:
        assert login(rev, tokens["reviewer"]).status_code == 303
        is_problem(rev.get(f"/review/audit?before={huge}"), 422)
        is_problem(rev.get(f"/review/submissions/{uuid.uuid4()}/files/{huge}"), (404, 422))
    with client(r2, tokens["a"]) as a:
        long_boundary = "b" * 300
        body = f"--{long_boundary}\r\nContent-Disposition: form-data; name=\"track\"\r\n\r\nx\r\n--{long_boundary}--\r\n"
        resp = a.post("/api/v1/submissions", content=body.encode(),
                      headers={"Content-Type": f"multipart/form-data; boundary={long_boundary}"})
    is_problem(resp, 400)
    assert "boundary" in resp.json()["detail"]


# -- 4. API docs work offline ------------------------------------------------------------------------------


def test_api_docs_load_nothing_from_other_origins(r2: HServer) -> None:
    with client(r2, follow_redirects=True) as anon:
        for path in ("/docs", "/redoc"):
            resp = anon.get(path)
            assert resp.status_code in (200, 404), (path, resp.status_code)
            if resp.status_code == 200:
                assert "default-src 'self'" in resp.headers.get("content-security-policy", ""), path
                srcs = re.findall(r'(?:src|href)="([^"]+)"', resp.text)
                assert srcs and all(not re.match(r"^(https?:)?//", s) for s in srcs), srcs
        page = anon.get("/docs")
    assert page.status_code == 200 and "/api/v1/submissions" in page.text


# -- 5. slow clients ---------------------------------------------------------------------------------------


def test_stalled_upload_body_is_cut_off_with_408(r2: HServer, tokens: dict[str, str], tiny: dict[str, Any]) -> None:
    s = raw_request(r2, upload_head(r2, tokens["b"], 1_000_000))
    s.sendall(part("code", "train_gpt.py", unique_code(tiny, "stall")))
    t0 = time.monotonic()
    reply = read_response(s, 30)
    s.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply[:300]
    assert time.monotonic() - t0 < 25
    wait_until(lambda: temp_files(r2.data_dir) == [], 30, "the stalled upload's temp files to go")
    assert_no_orphans(r2.sql, r2.data_dir)


def test_trickled_upload_below_the_minimum_rate_gets_408(r2: HServer, tokens: dict[str, str]) -> None:
    s = raw_request(r2, upload_head(r2, tokens["b"], 1_000_000))
    s.sendall(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="code"; filename="t.py"\r\n\r\n'.encode())
    reply = b""
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and not reply:
            s.sendall(b"#" * 10)  # 10 bytes every 0.2 s: far below 1000 B/s, yet never idle
            time.sleep(0.2)
            s.setblocking(False)
            try:
                reply = s.recv(65536)
            except BlockingIOError:
                pass
            s.setblocking(True)
    except (BrokenPipeError, ConnectionResetError):
        pass
    s.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply[:300]


def test_stalled_form_body_is_cut_off_with_408(r2: HServer) -> None:
    """Not only uploads: any request body (here the login form) has the deadline and rate."""
    host = r2.url.removeprefix("http://")
    s = raw_request(r2, f"POST /review/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
                        "application/x-www-form-urlencoded\r\nContent-Length: 5000\r\n\r\ntoken=abc")
    t0 = time.monotonic()
    reply = read_response(s, 30)
    s.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply[:300]
    assert b"request-timeout" in reply
    assert time.monotonic() - t0 < 25


def test_stalled_request_head_is_closed(r2: HServer) -> None:
    s = raw_request(r2, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    reply = read_response(s, 30)
    s.close()
    assert time.monotonic() - t0 < 25, "the server kept a half-sent request head open"
    assert reply == b"" or reply.startswith(b"HTTP/1.1 408"), reply[:200]


# -- 6. names and text that mislead ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["train_\u202eyp.py", "gpt\u2066x\u2069.py", "a\u200fb.py", "a\u2028b.py"])
def test_bidi_controls_in_file_names_are_refused(r2: HServer, tokens: dict[str, str], tiny: dict[str, Any],
                                                 name: str) -> None:
    with client(r2, tokens["a"]) as a:
        resp = a.post("/api/v1/submissions", files=files_for(tiny, code=unique_code(tiny, "bidi"), names={"code": name}))
    is_problem(resp, 422)
    assert resp.json().get("field") == "code"
    assert_no_orphans(r2.sql, r2.data_dir)


def test_unknown_track_and_bad_config_are_refused_before_quota(r2: HServer, tokens: dict[str, str],
                                                              tiny: dict[str, Any]) -> None:
    with client(r2, tokens["a"]) as a:
        used = a.get("/api/v1/quota").json()["used_today"]
        files = files_for(tiny, code=unique_code(tiny, "track")) + [("track", (None, "track_1hour"))]
        resp = a.post("/api/v1/submissions", files=files)
        is_problem(resp, 422)
        assert resp.json().get("field") == "track" and "track_10min_16mb" in resp.json()["detail"]
        claim = json.dumps({"track": "my_permanent_tab", "val_bpb": 1.0}).encode()
        resp = a.post("/api/v1/submissions", files=files_for(tiny, code=unique_code(tiny, "track2"),
                                                             submission_json=claim))
        is_problem(resp, 422)
        bad = json.dumps({**TINY_CONFIG, "model": {**TINY_CONFIG["model"], "num_layer": 2}}).encode()
        resp = a.post("/api/v1/submissions", files=files_for(tiny, code=unique_code(tiny, "cfg"), config=bad))
        is_problem(resp, 422)
        assert "num_layer" in resp.json()["detail"]
        assert a.get("/api/v1/quota").json()["used_today"] == used
        # A configured alias is still accepted.
        ok = a.post("/api/v1/submissions", files=files_for(tiny, code=unique_code(tiny, "alias"))
                    + [("track", (None, "non_record_16mb"))])
        assert ok.status_code == 202, ok.text
        assert ok.json()["track"] == "track_non_record_16mb"
    assert_no_orphans(r2.sql, r2.data_dir)


def test_unknown_track_on_the_leaderboard_is_404(r2: HServer) -> None:
    with client(r2) as anon:
        is_problem(anon.get("/api/v1/leaderboard", params={"track": "nope"}), 404)
        assert anon.get("/leaderboard", params={"track": "nope"}).status_code == 404
        assert anon.get("/api/v1/leaderboard", params={"track": "track_10min_16mb"}).status_code == 200
        assert anon.get("/leaderboard").status_code == 200


def test_code_view_numbers_lines_like_the_rule_engine(corpus_server: HServer, tiny: dict[str, Any]) -> None:
    """U+2028 is not a line break for Python; the evidence link for the network import must point
    at the line that holds it."""
    s = corpus_server.server
    token = s.token("submitter", "r2-lines")
    code = (b"# a comment with a line separator \xe2\x80\xa8 inside it\n"
            b"x = 1  # \xe2\x80\xa9 and a paragraph separator\n"
            b"import urllib.request\n" + unique_code(tiny, "lines"))
    with client(corpus_server, token) as c:
        resp = c.post("/api/v1/submissions", files=files_for(tiny, code=code))
        assert resp.status_code == 202, resp.text
        sid = resp.json()["id"]
        body = wait_final(c, sid)
    ev = [e for r in body["verdict"]["rules"] if r["rule"] == "code.network" for e in r.get("evidence", [])]
    assert ev and ev[0]["line"] == 3, body["verdict"]["rules"]
    with client(corpus_server, follow_redirects=False) as rev:
        assert login(rev, s.token("reviewer", "r2-lines-rev")).status_code == 303
        page = rev.get(f"/review/submissions/{sid}/code", follow_redirects=True)
    assert page.status_code == 200
    rows = dict(re.findall(r'<tr id="L(\d+)".*?<pre>(.*?)</pre>', page.text, re.S))
    assert "urllib" in rows["3"], rows.get("3")
    assert "separator" in rows["1"] and "inside it" in rows["1"], rows.get("1")


def test_public_author_is_the_submitter_and_the_claim_is_labelled(corpus_server: HServer,
                                                                  tiny: dict[str, Any]) -> None:
    s = corpus_server.server
    token = s.token("submitter", "r2-real-name")
    claim = json.dumps({"author": "Famous Person", "name": "borrowed fame"}).encode()
    with client(corpus_server, token) as c:
        resp = c.post("/api/v1/submissions", files=files_for(tiny, code=unique_code(tiny, "author"),
                                                             submission_json=claim))
        assert resp.status_code == 202, resp.text
        view = resp.json()
        assert view["author"] == "r2-real-name"
        assert view["claimed_author"] == "Famous Person"
        sid = view["id"]
        final = wait_final(c, sid)
    with client(corpus_server, follow_redirects=False) as rev:
        assert login(rev, s.token("reviewer", "r2-author-rev")).status_code == 303
        page = rev.get(f"/review/submissions/{sid}").text
    assert "by r2-real-name" in page and "claimed author: Famous Person" in page
    # A demo-sized evaluation is never published; when the server scores the full set it is.
    if final["state"] == "published":
        with client(corpus_server) as anon:
            page = anon.get(f"/entries/{sid}").text
            board = anon.get("/api/v1/leaderboard", params={"track": final["track"]}).json()
        assert "r2-real-name" in page and "claimed author" in page.lower()
        entry = next(e for e in board["verified"]["entries"] if e["submission_id"] == sid)
        assert entry["author"] == "r2-real-name" and entry["claimed_author"] == "Famous Person"


# -- 7. what submitters see ---------------------------------------------------------------------------------


def test_submitters_see_no_worker_host_pid_or_server_paths(r2: HServer, tokens: dict[str, str],
                                                          tiny: dict[str, Any]) -> None:
    with client(r2, tokens["a"]) as a:
        resp = a.post("/api/v1/submissions", files=files_for(tiny, code=unique_code(tiny, "paths")))
        assert resp.status_code == 202, resp.text
        sid = resp.json()["id"]
        # What a worker on host "gpu-node-7" (pid 4242) writes when a stored file is missing.
        path = f"{r2.data_dir}/blobs/ab/cd/{'ab' * 32}"
        error = f"FileNotFoundError: [Errno 2] No such file or directory: '{path}'"
        r2.sql("INSERT INTO attempts (submission_id, number, stage, worker, started_at, finished_at, outcome, error) "
               "VALUES (%s, 1, 'evaluate', 'gpu-node-7:4242', now(), now(), 'error', %s)", sid, error)
        r2.sql("INSERT INTO state_transitions (submission_id, from_state, to_state, attempt, actor, reason, at) "
               "VALUES (%s, 'queued', 'failed', 1, 'worker:gpu-node-7:4242', %s, now())", sid, error)
        r2.sql("UPDATE submissions SET state = 'failed', reason = %s WHERE id = %s",
               f"platform error after 3 attempts: {error}", sid)
        text = a.get(f"/api/v1/submissions/{sid}").text
    assert "gpu-node-7" not in text and "4242" not in text
    assert str(r2.data_dir) not in text and "/blobs/" not in text
    assert "FileNotFoundError" in text  # the kind of failure is still said
    with client(r2, tokens["reviewer"]) as rev:
        assert "gpu-node-7:4242" in rev.get(f"/api/v1/submissions/{sid}").text  # reviewers keep the detail


def test_no_server_header(r2: HServer) -> None:
    with client(r2) as anon:
        resp = anon.get("/healthz")
    assert resp.status_code == 200
    assert "server" not in {k.lower() for k in resp.headers}, resp.headers.get("server")


@pytest.mark.parametrize("given,expected", [
    ("/review/../metrics", "/review"),
    ("/review/./audit", "/review/audit"),
    ("/review%2f..%2fmetrics", "/review"),
    ("/reviewer-evil", "/review"),
    ("/review/audit?action=web", "/review/audit?action=web"),
])
def test_login_next_is_normalised(r2: HServer, tokens: dict[str, str], given: str, expected: str) -> None:
    with client(r2, follow_redirects=False) as c:
        resp = login(c, tokens["reviewer"], given)
    assert resp.status_code == 303
    assert resp.headers["location"] == expected
