"""The reviewer tools through the real service: `golfcheck serve` and a Celery checks worker over
PostgreSQL and Redis, driven over HTTP with a reviewer's browser session (login form, cookie,
CSRF token) as a person's browser would.

The database starts with the browser tests' seeded rows (`tests/support/browser_seed.py`: a
published, a scored-failing and an evaluating submission of one submitter); tests upload more
through the API where they need real stored code. Every expectation is read from the database
or from the inputs, never from the page under test.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import math
import re
import uuid
from typing import Any, Iterator

import httpx
import psycopg
import pytest

from tests.support import browser_seed
from tests.support.service import (
    REDIS_URL,
    Server,
    _create_db,
    _drop_db,
    base_env,
    start_server,
    start_worker,
    upload,
    wait_until,
)

from api.core import migrate
from api.core.db import dispose_engines
from api.core.settings import Settings
from gepa.lines import split_lines

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ROW_ID = re.compile(r'<tr data-id="([0-9a-f-]{36})"')


class Stack:
    def __init__(self, server: Server, pg: str, seeded: Any):
        self.server, self.pg, self.seeded = server, pg, seeded

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.pg, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return list(cur.fetchall()) if cur.description else []


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_prefix: str) -> Iterator[Stack]:
    name = _create_db()
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    data = tmp_path_factory.mktemp("reviewer-tools")
    env = base_env(data, GOLFCHECK_DATABASE_URL=url, GOLFCHECK_BROKER_URL=REDIS_URL,
                   GOLFCHECK_BROKER_PREFIX=redis_prefix + "rt:")
    settings = Settings.from_env(env)
    migrate.upgrade(settings)
    seeded = browser_seed.seed(settings)
    dispose_engines()
    server = start_server(env, data, "--no-worker")
    worker = None
    try:
        worker = start_worker(env, data, "checks")
        yield Stack(server, f"postgresql://postgres@127.0.0.1:5432/{name}", seeded)
    finally:
        if worker is not None:
            worker.stop()
        server.proc.stop()
        dispose_engines()
        _drop_db(name)


def login(server: Server, token: str) -> tuple[httpx.Client, str]:
    """A client holding a reviewer session cookie, and that session's CSRF token."""
    c = httpx.Client(base_url=server.url, timeout=60)
    form = c.get("/review/login")
    r = c.post("/review/login", data={"token": token, "csrf_token": CSRF.search(form.text).group(1),
                                      "next": "/review"})
    assert r.status_code == 303, r.text
    page = c.get("/review")
    assert page.status_code == 200
    return c, CSRF.search(page.text).group(1)


@pytest.fixture(scope="module")
def rita(stack: Stack) -> Iterator[tuple[httpx.Client, str]]:
    c, csrf = login(stack.server, stack.seeded.reviewer_token)
    yield c, csrf
    c.close()


@pytest.fixture(scope="module")
def ravi(stack: Stack) -> Iterator[tuple[httpx.Client, str]]:
    c, csrf = login(stack.server, stack.server.token("reviewer", "ravi"))
    yield c, csrf
    c.close()


def queue_ids(c: httpx.Client, **params: str) -> list[str]:
    r = c.get("/review", params=params)
    assert r.status_code == 200, r.text
    return ROW_ID.findall(r.text)


def holder_of(stack: Stack, sid: str) -> str | None:
    rows = stack.sql("SELECT u.name FROM review_claims c JOIN users u ON u.id = c.user_id WHERE c.submission_id = %s",
                     sid)
    return rows[0][0] if rows else None


# -- queue: filter and sort ------------------------------------------------------------------------


def test_queue_filters_sorts_and_keeps_them_in_links(stack: Stack, rita: tuple[httpx.Client, str]) -> None:
    c, _ = rita
    sd = stack.seeded
    stack.sql("UPDATE submissions SET family = 'sp8192' WHERE id = %s", sd.failing_id)
    everything = stack.sql("SELECT id, state, measured_val_bpb, created_at FROM submissions")
    by_state = {s: {i for i, st, _, _ in everything if st == s} for _, s, _, _ in everything}
    assert set(queue_ids(c, state="scored")) == by_state["scored"]
    assert queue_ids(c, family="sp8192") == [sd.failing_id]
    assert set(queue_ids(c, submitter="alice")) == {r[0] for r in everything}
    assert queue_ids(c, submitter="nobody-of-that-name") == []
    dates = sorted(r[3].date() for r in everything)
    assert queue_ids(c, since=(dates[-1] + dt.timedelta(days=1)).isoformat()) == []
    assert set(queue_ids(c, since=dates[0].isoformat(), until=dates[-1].isoformat())) == {r[0] for r in everything}

    # Sorted by measured BPB, largest first; submissions without a measurement go last.
    measured = sorted((r for r in everything if r[2] is not None), key=lambda r: -r[2])
    got = queue_ids(c, sort="measured", dir="desc")
    assert got[:len(measured)] == [r[0] for r in measured]
    assert set(got[len(measured):]) == {r[0] for r in everything if r[2] is None}
    oldest_first = [r[0] for r in sorted(everything, key=lambda r: r[3])]
    assert queue_ids(c) == oldest_first
    assert queue_ids(c, sort="created", dir="desc") == oldest_first[::-1]

    # The view stays in the query string: sort headers keep the filters, and flip the direction.
    page = c.get("/review", params={"state": "scored", "sort": "measured", "dir": "asc"}).text
    header = re.search(r'<th scope="col"[^>]*aria-sort="ascending"[^>]*>\s*<a class="sort" href="([^"]+)"', page)
    assert header is not None
    link = html.unescape(header.group(1))
    assert "state=scored" in link and "sort=measured" in link and "dir=desc" in link
    assert 'name="sort" value="measured"' in page  # the filter form keeps the sort

    r = c.get("/review", params={"sort": "password"})
    assert r.status_code == 400 and "sort must be one of" in r.text
    r = c.get("/review", params={"since": "yesterday"})
    assert r.status_code == 400 and "since must be a date" in r.text


# -- claims ----------------------------------------------------------------------------------------


def test_claim_assign_release_are_shown_and_audited(stack: Stack, rita: tuple[httpx.Client, str],
                                                    ravi: tuple[httpx.Client, str]) -> None:
    (rc, rcsrf), (vc, vcsrf) = rita, ravi
    sid = stack.seeded.published_id
    r = rc.post(f"/review/submissions/{sid}/claim", data={"csrf_token": rcsrf, "back": "/review?sort=name"})
    assert r.status_code == 303 and r.headers["location"] == "/review?sort=name&done=claim"
    assert holder_of(stack, sid) == "rita-reviewer"
    assert queue_ids(rc, claimed_by="rita-reviewer") == [sid]
    row = re.search(rf'<tr data-id="{sid}">.*?</tr>', rc.get("/review").text, re.S).group(0)
    assert 'class="holder">rita-reviewer' in row
    assert sid not in queue_ids(rc, claimed_by="(nobody)")

    # Someone else's claim is not silently taken: claiming is refused, assigning takes it over.
    r = vc.post(f"/review/submissions/{sid}/claim", data={"csrf_token": vcsrf})
    assert r.status_code == 409 and "already claimed by rita-reviewer" in r.text
    assert holder_of(stack, sid) == "rita-reviewer"
    r = vc.post(f"/review/submissions/{sid}/assign", data={"csrf_token": vcsrf, "assignee": "ravi"})
    assert r.status_code == 303
    assert holder_of(stack, sid) == "ravi"
    assert 'Reviewer: <strong>ravi</strong>' in rc.get(f"/review/submissions/{sid}").text

    # Only reviewers and admins can hold a claim.
    r = vc.post(f"/review/submissions/{sid}/assign", data={"csrf_token": vcsrf, "assignee": "alice"})
    assert r.status_code == 400 and "only reviewers and admins" in r.text
    assert holder_of(stack, sid) == "ravi"

    r = rc.post(f"/review/submissions/{sid}/release", data={"csrf_token": rcsrf, "reason": "ravi is away"})
    assert r.status_code == 303 and holder_of(stack, sid) is None

    audit = stack.sql("SELECT actor, action, details FROM audit_log WHERE submission_id = %s "
                      "AND action IN ('review.claim', 'review.assign', 'review.release') ORDER BY id", sid)
    assert [(a, b) for a, b, _ in audit] == [("user:rita-reviewer", "review.claim"), ("user:ravi", "review.assign"),
                                            ("user:rita-reviewer", "review.release")]
    details = [json.loads(d) for _, _, d in audit]
    assert details[1]["before"] == {"claimed_by": "rita-reviewer"} and details[1]["after"] == {"claimed_by": "ravi"}
    assert details[2]["reason"] == "ravi is away" and details[2]["after"] == {"claimed_by": None}
    # Claims are internal: they are not reviewer notes on the public entry page.
    assert stack.sql("SELECT count(*) FROM review_actions WHERE action IN ('claim', 'assign', 'release')")[0][0] == 0


def test_claims_need_a_reviewer_session_and_the_csrf_token(stack: Stack, rita: tuple[httpx.Client, str]) -> None:
    c, _ = rita
    sid = stack.seeded.failing_id
    r = c.post(f"/review/submissions/{sid}/claim", data={"csrf_token": "forged"})
    assert r.status_code == 403
    submitter = {"Authorization": f"Bearer {stack.seeded.submitter_token}"}
    with httpx.Client(base_url=stack.server.url) as anon:
        r = anon.post(f"/review/submissions/{sid}/claim", data={"csrf_token": "x"}, headers=submitter)
        assert r.status_code == 303 and r.headers["location"].startswith("/review/login")
    assert holder_of(stack, sid) is None


# -- bulk ------------------------------------------------------------------------------------------


def test_bulk_rerun_partial_failure_reports_each_item(stack: Stack, rita: tuple[httpx.Client, str]) -> None:
    c, csrf = rita
    sd = stack.seeded
    before = dict(stack.sql("SELECT id, state FROM submissions WHERE id IN (%s, %s)", sd.failing_id, sd.running_id))
    assert before == {sd.failing_id: "scored", sd.running_id: "evaluating"}
    reason = "verifier upgraded: re-run the checks"
    r = c.post("/review/bulk", data={"csrf_token": csrf, "action": "rerun", "reason": reason, "back": "state=scored",
                                     "ids": [sd.failing_id, sd.running_id]})
    assert r.status_code == 200, r.text
    rows = {sid: cls for cls, sid in re.findall(r'<tr class="(ok|refused)" data-id="([0-9a-f-]{36})"', r.text)}
    assert rows == {sd.failing_id: "ok", sd.running_id: "refused"}
    assert "already in the pipeline" in r.text  # the refused item says why, as the single action would
    assert "1 of 2 done, 1 refused" in r.text
    assert 'href="/review?state=scored"' in r.text  # back to the queue as it was filtered
    # The refused item is untouched; the other was re-queued and a real Celery worker took it.
    assert stack.sql("SELECT state FROM submissions WHERE id = %s", sd.running_id)[0][0] == "evaluating"
    wait_until(lambda: stack.sql("SELECT state FROM submissions WHERE id = %s", sd.failing_id)[0][0]
               not in ("scored", "queued"), 120, "the checks worker to pick up the re-run")
    audit = stack.sql("SELECT submission_id, details FROM audit_log WHERE action = 'review.rerun'")
    assert [a[0] for a in audit] == [sd.failing_id]
    assert json.loads(audit[0][1])["reason"] == reason


def test_bulk_refuses_what_cannot_succeed_and_forged_forms(stack: Stack, rita: tuple[httpx.Client, str]) -> None:
    c, csrf = rita
    sd = stack.seeded
    notes = "SELECT count(*) FROM review_actions WHERE action = 'note'"
    before = stack.sql(notes)[0][0]
    # A note needs a reason: nothing is done for any item.
    r = c.post("/review/bulk", data={"csrf_token": csrf, "action": "note", "reason": " ",
                                     "ids": [sd.published_id, sd.running_id]})
    assert r.status_code == 400 and "give a reason" in r.text
    r = c.post("/review/bulk", data={"csrf_token": csrf, "action": "note", "reason": "x"})
    assert r.status_code == 400 and "select at least one" in r.text
    r = c.post("/review/bulk", data={"csrf_token": csrf, "action": "delete", "reason": "x", "ids": [sd.published_id]})
    assert r.status_code == 400 and "choose an action" in r.text
    r = c.post("/review/bulk", data={"csrf_token": "forged", "action": "note", "reason": "x", "ids": [sd.published_id]})
    assert r.status_code == 403
    r = c.post("/review/bulk", data={"csrf_token": csrf, "action": "note", "reason": "x", "ids": [sd.published_id]},
               headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    with httpx.Client(base_url=stack.server.url) as anon:
        r = anon.post("/review/bulk", data={"action": "note", "reason": "x", "ids": [sd.published_id]},
                      headers={"Authorization": f"Bearer {stack.seeded.submitter_token}"})
        assert r.status_code == 303 and r.headers["location"].startswith("/review/login")
    assert stack.sql(notes)[0][0] == before
    # Up to 200 items per request, each reported; more is refused as a whole.
    many = [str(uuid.uuid4()) for _ in range(199)] + [sd.published_id]
    r = c.post("/review/bulk", data={"csrf_token": csrf, "action": "release", "ids": many})
    assert r.status_code == 200 and r.text.count('<tr class="refused"') == 200
    r = c.post("/review/bulk", data={"csrf_token": csrf, "action": "release", "ids": many + [str(uuid.uuid4())]})
    assert r.status_code == 400 and "at most 200" in r.text
    r = c.post("/review/bulk", data={"csrf_token": csrf, "action": "release", "ids": ["x" * 5000]})
    assert r.status_code == 400 and "not a submission id" in r.text
    # And a bulk note on two items writes two notes (one reason for both), and an unknown id is reported.
    ghost = str(uuid.uuid4())
    r = c.post("/review/bulk", data={"csrf_token": csrf, "action": "note", "reason": "checked the logs by hand",
                                     "ids": [sd.published_id, ghost, sd.running_id]})
    rows = {sid: cls for cls, sid in re.findall(r'<tr class="(ok|refused)" data-id="([0-9a-f-]{36})"', r.text)}
    assert rows == {sd.published_id: "ok", ghost: "refused", sd.running_id: "ok"}
    assert stack.sql(notes)[0][0] == before + 2


# -- export ----------------------------------------------------------------------------------------

HOSTILE = {"name": "=HYPERLINK(\"https://evil.example\",\"click\")", "github_id": "x", "date": "2026-05-01",
           "track": "10min_16mb"}
# Names a spreadsheet would run as formulas, one per dangerous first character.
FORMULAS = ("+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "\t=1+1")


def test_export_csv_is_injection_safe_and_matches_the_filtered_queue(
        stack: Stack, rita: tuple[httpx.Client, str], tiny: dict[str, Any]) -> None:
    c, _ = rita
    mallory = stack.server.token("submitter", "mallory")
    with stack.server.client(mallory) as api:
        claim = {**tiny["claim"], **HOSTILE}
        resp = upload(api, tiny, submission_json=claim, extra_code=f"\n# {uuid.uuid4().hex}\n")
        assert resp.status_code == 202, resp.text
        sid = resp.json()["id"]
    stored = stack.sql("SELECT name FROM submissions WHERE id = %s", sid)[0]
    assert stored[0] == HOSTILE["name"]  # the hostile value is really stored as sent
    mallory_id = stack.sql("SELECT submitter_id FROM submissions WHERE id = %s", sid)[0][0]
    cols = [r[0] for r in stack.sql("SELECT column_name FROM information_schema.columns "
                                    "WHERE table_name = 'submissions' ORDER BY ordinal_position")]
    copied = ", ".join(c for c in cols if c not in ("id", "name", "created_at", "dedupe_key"))
    others = []
    for i, name in enumerate(FORMULAS, 1):  # copies of mallory's row, named with the other dangerous starts
        other = str(uuid.uuid4())
        stack.sql(f"INSERT INTO submissions (id, name, created_at, dedupe_key, {copied}) SELECT %s, %s, "
                  f"created_at + %s * interval '1 second', %s, {copied} FROM submissions WHERE id = %s",
                  other, name, i, uuid.uuid4().hex, sid)
        others.append(other)

    r = c.get("/review/export.csv", params={"submitter": "mallory"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(r.text)))
    head, body = table[0], table[1:]
    assert mallory_id and [row[head.index("id")] for row in body] == [sid, *others]
    names = [row[head.index("name")] for row in body]
    assert names == ["'" + n for n in (HOSTILE["name"], *FORMULAS)]
    for cells in table:
        for cell in cells:
            assert not cell.startswith(("=", "+", "-", "@")), cell

    # JSON keeps the values as they are (it is not a spreadsheet), with the same rows.
    j = c.get("/review/export.json", params={"submitter": "mallory"}).json()
    assert [(x["id"], x["name"]) for x in j["rows"]] == list(zip([sid, *others], [HOSTILE["name"], *FORMULAS]))
    assert j["filters"] == {"submitter": "mallory"}

    # Filtered like the queue, in the queue's order, without its page limit.
    for params in ({"sort": "measured", "dir": "desc"}, {"state": "published"}, {"submitter": "alice", "sort": "name"}):
        exported = [x["id"] for x in c.get("/review/export.json", params=params).json()["rows"]]
        assert exported == queue_ids(c, **params), params
    assert stack.sql("SELECT count(*) FROM audit_log WHERE action = 'review.export'")[0][0] >= 2

    # Not for anyone without a reviewer session.
    with httpx.Client(base_url=stack.server.url) as anon:
        for path in ("/review/export.csv", "/review/export.json"):
            r = anon.get(path, headers={"Authorization": f"Bearer {mallory}"})
            assert r.status_code == 303 and r.headers["location"].startswith("/review/login"), path
    r = c.get("/review/export.csv", params={"sort": "nope"})
    assert r.status_code == 400


# -- diff ------------------------------------------------------------------------------------------

# A form feed and U+2028 inside a comment: str.splitlines() breaks at both, the rule engine
# (gepa.lines) at neither, so numbering by the wrong rule shifts every later line.
BASE_CODE = "import os\n# page break \x0c here\n# odd \u2028 separator\nprint('train')\n\n\ndef f():\n    return 1\n"
NEW_CODE = BASE_CODE.replace("return 1", "return 2") + "x = '</pre><script>window.pwned=1</script>'\n"


def _upload_code(server: Server, token: str, tiny: dict[str, Any], code: str) -> str:
    with server.client(token) as api:
        files = [("artifact", ("final_model.int6.ptz", tiny["artifact"].read_bytes(), "application/octet-stream")),
                 ("code", ("train_gpt.py", code.encode(), "text/x-python")),
                 ("config", ("eval.json", tiny["config"].read_bytes(), "application/json"))]
        resp = api.post("/api/v1/submissions", files=files)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["id"])


def test_diff_against_previous_numbers_lines_as_the_rule_engine(
        stack: Stack, rita: tuple[httpx.Client, str], tiny: dict[str, Any]) -> None:
    c, _ = rita
    carol = stack.server.token("submitter", "carol")
    first = _upload_code(stack.server, carol, tiny, BASE_CODE)
    second = _upload_code(stack.server, carol, tiny, NEW_CODE)
    r = c.get(f"/review/submissions/{second}/diff", params={"against": "previous", "view": "unified"})
    assert r.status_code == 200
    page = r.text
    assert f'href="/review/submissions/{first}"' in page
    new_lines = split_lines(NEW_CODE)
    changed = [i + 1 for i, line in enumerate(new_lines) if "return 2" in line or "pwned" in line]
    assert changed != [i + 1 for i, line in enumerate(NEW_CODE.splitlines()) if "return 2" in line or "pwned" in line]
    added = [int(n) for n in re.findall(r'<tr class="d-add">\s*<th scope="row" class="ln old"></th>'
                                        r'<th scope="row" class="ln new"><a href="[^"]+#L(\d+)"', page)]
    assert added == changed
    removed = re.findall(r'<tr class="d-del">\s*<th scope="row" class="ln old"><a href="[^"]+#L(\d+)"', page)
    assert [int(n) for n in removed] == [i + 1 for i, line in enumerate(split_lines(BASE_CODE)) if "return 1" in line]
    # Escaped: the submitted markup is text, never a tag.
    assert "<script>window.pwned" not in page and "&lt;script&gt;" in page
    # One line changed, one added (by construction of NEW_CODE).
    assert '+2</span> <span class="diff-del-count">−1' in page

    # The file view that the line numbers link to numbers the same way.
    link = re.search(r'<a href="(/review/submissions/' + second + r'/files/\d+)#L' + str(changed[-1]), page)
    assert link is not None
    view = c.get(link.group(1)).text
    assert f'id="L{changed[-1]}"' in view and f'id="L{len(new_lines) + 1}"' not in view

    # Side by side shows both versions of the changed line on one row.
    split = c.get(f"/review/submissions/{second}/diff").text
    pair = re.search(r'<tr class="d-change">.*?</tr>', split, re.S)
    assert pair is not None and "return" in pair.group(0) and ">1<" in pair.group(0) and ">2<" in pair.group(0)
    # The first submission has nothing earlier.
    assert 'id="no-target"' in c.get(f"/review/submissions/{first}/diff").text


def test_diff_against_the_current_record(stack: Stack, rita: tuple[httpx.Client, str]) -> None:
    c, _ = rita
    sd = stack.seeded
    # The record is the track's best verified entry as the public leaderboard ranks it.
    with httpx.Client(base_url=stack.server.url) as pub:
        board = pub.get("/api/v1/leaderboard", params={"track": "10min_16mb"}).json()
    best = board["verified"]["entries"][0]["submission_id"]
    assert best != sd.running_id
    page = c.get(f"/review/submissions/{sd.running_id}/diff", params={"against": "record"}).text
    assert f'href="/review/submissions/{best}"' in page
    if best == sd.published_id:  # the seeded running submission is the record's code plus a trailing comment
        clean = (browser_seed.SAMPLE_SCRIPTS / "train_gpt_clean.py.txt").read_text()
        grown = len(split_lines(clean + "\n# v2\n")) - len(split_lines(clean))
        assert f'+{grown}</span> <span class="diff-del-count">−0' in page
        assert "# v2" in page
    # The record holder is compared with the runner-up, and says so (or says there is none).
    own = c.get(f"/review/submissions/{best}/diff", params={"against": "record"}).text
    verified = len(board["verified"]["entries"])
    assert ('id="holds-record"' in own) == (verified > 1) and ('id="no-target"' in own) == (verified == 1)
    r = c.get(f"/review/submissions/{sd.running_id}/diff", params={"against": "nothing"})
    assert r.status_code == 400
    with httpx.Client(base_url=stack.server.url) as anon:
        r = anon.get(f"/review/submissions/{sd.running_id}/diff",
                     headers={"Authorization": f"Bearer {sd.submitter_token}"})
        assert r.status_code == 303 and r.headers["location"].startswith("/review/login")


# -- audit table -----------------------------------------------------------------------------------


def test_audit_table_filters_and_pages(stack: Stack, rita: tuple[httpx.Client, str]) -> None:
    c, _ = rita
    sd = stack.seeded
    # Enough entries of one actor for several pages.
    for i in range(120):
        stack.sql("INSERT INTO audit_log (at, actor, action, submission_id, details) "
                  "VALUES (now(), 'system:pager-test', 'test.page', %s, %s)", sd.published_id,
                  json.dumps({"reason": f"entry {i}", "nested": {"deep": list(range(5))}}))
    ids = [r[0] for r in stack.sql("SELECT id FROM audit_log WHERE actor = 'system:pager-test' ORDER BY id DESC")]
    pages = math.ceil(len(ids) / 50)

    def rows(**params: Any) -> list[int]:
        r = c.get("/review/audit", params=params)
        assert r.status_code == 200, r.text
        return [int(x) for x in re.findall(r'<tr id="audit-(\d+)">', r.text)]

    assert rows(actor="system:pager-test") == ids[:50]
    assert rows(actor="system:pager-test", page=2) == ids[50:100]
    last = c.get("/review/audit", params={"actor": "system:pager-test", "page": pages}).text
    assert f"page {pages} of {pages}" in last and "Older entries" not in last and "Newer entries" in last
    # Details are collapsed per row, with the reason as the summary.
    first = c.get("/review/audit", params={"actor": "system:pager-test"}).text
    assert first.count("<details>") == 50 and "<summary>entry 119" in first

    # Action prefix, submission (a prefix like the queue's 8 characters), date range.
    expect = [r[0] for r in stack.sql("SELECT id FROM audit_log WHERE action LIKE 'state.%%' AND submission_id = %s "
                                      "ORDER BY id DESC", sd.running_id)]
    assert expect and rows(action="state.", submission=sd.running_id[:8]) == expect
    today = stack.sql("SELECT (now() AT TIME ZONE 'UTC')::date")[0][0]
    assert rows(actor="system:pager-test", since=today.isoformat(), until=today.isoformat()) == ids[:50]
    assert rows(actor="system:pager-test", until="2000-01-01") == []
    r = c.get("/review/audit", params={"since": "2026-13-01"})
    assert r.status_code == 400 and "since must be a date" in r.text
    with httpx.Client(base_url=stack.server.url) as anon:
        assert anon.get("/review/audit").status_code == 303
