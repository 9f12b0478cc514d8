"""Public pages and the reviewer dashboard in a real Chromium against a real server process.

The main path of the issue: a reviewer signs in, opens a submission that finished evaluating,
sees its chart and rule results, flags it with a reason, and the flag shows on the public entry
page. Around it: the leaderboard over all 60 ingested records, the file:line evidence links into
the highlighted code view, override + publish, live progress while evaluating, the audit log,
reading without JavaScript, and that a submitter token cannot open reviewer pages.
"""

from __future__ import annotations

import re

import httpx
import pytest
from tests.support.browser_seed import add_chunks
from tests.support.browser import a11y_problems, login, shot
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_leaderboard_lists_every_ingested_record(server, page):
    page.goto(server.url + "/leaderboard?track=all")
    expect(page.get_by_role("heading", level=1)).to_have_text("Parameter Golf leaderboard")
    # 60 folders, 59 rows: the record_support folder is shown inside the row of the record it backs.
    expect(page.locator("tr.claimed")).to_have_count(59)
    # Every track gets its own section and table with column headers.
    assert page.locator("section.track h2").count() == 2
    headers = page.locator("section.track").first.locator("table.board thead th").all_inner_texts()
    assert headers == ["Rank", "Name", "BPB", "Author", "Seeds (mean ± std)", "Hardware", "Status", "Verdict",
                       "Size", "Date", "Code"]
    # Size bars are labelled for screen readers with the numbers they draw.
    bar = page.locator("tr.claimed svg.size-bar").first
    assert re.search(r"[\d,]+ bytes of the 16,000,000-byte cap \([\d,]+ (under|over)\)", bar.get_attribute("aria-label") or "")
    assert a11y_problems(page) == []
    shot(page, "leaderboard-all")

    page.goto(server.url + "/leaderboard")  # the default track: 46 folders, the support folded in
    expect(page.locator("tr.claimed")).to_have_count(45)
    first = page.locator("tr.claimed").first
    expect(first.locator("td").first).to_have_text("1")
    expect(first.locator(".badge.claimed")).to_have_text("claimed")
    shot(page, "leaderboard-10min")

    # A claimed record's page: claimed numbers and the compliance rule results with evidence.
    first.locator("a").first.click()
    expect(page.get_by_role("heading", name="Rule results")).to_be_visible()
    assert page.locator("table.rules tbody tr").count() > 5
    expect(page.locator("p.notice").first).to_contain_text("has not measured them")
    assert a11y_problems(page) == []
    shot(page, "record")


def test_every_record_and_track_page_renders(server):
    """All 60 ingested records render (HTTP only: a browser per page would add nothing)."""
    with httpx.Client(base_url=server.url) as c:
        board = c.get("/leaderboard?track=all")
        assert board.status_code == 200
        ids = sorted(set(int(i) for i in re.findall(r'href="/records/(\d+)"', board.text)))
        assert len(ids) == 60
        for rid in ids:
            r = c.get(f"/records/{rid}")
            assert r.status_code == 200, (rid, r.text[:300])
            assert "Rule results" in r.text
        for track in ("track_10min_16mb", "track_non_record_16mb", "10min_16mb"):
            assert c.get("/leaderboard", params={"track": track}).status_code == 200
        assert c.get("/leaderboard", params={"track": "no_such_track"}).status_code == 404  # unknown tracks
        assert c.get("/records/999999").status_code == 404
        assert c.get("/entries/not-a-real-id").status_code == 404
        # Unpublished submissions have no public page.
        assert c.get(f"/entries/{server.seeded.failing_id}").status_code == 404
        assert c.get(f"/entries/{server.seeded.running_id}").status_code == 404


def test_reviewer_flags_a_finished_submission_and_the_public_page_shows_it(server, page):
    sid = server.seeded.published_id
    login(page, server.url, server.seeded.reviewer_token)
    expect(page.get_by_role("heading", level=1)).to_have_text("Review queue")
    expect(page.locator("#awaiting")).to_contain_text("awaiting review")
    # Oldest first: the 26-hour-old scored submission is listed before the 5-hour-old one.
    names = page.locator("table.queue tbody tr td.name").all_inner_texts()
    assert names.index("Sliding window + downloads") < names.index("Naive baseline, re-verified")
    assert a11y_problems(page) == []
    shot(page, "review-queue")

    # Filters narrow the queue (state).
    page.get_by_label("State", exact=True).select_option("scored")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.queue tbody tr")).to_have_count(1)
    expect(page.locator("table.queue tbody tr")).to_contain_text("Sliding window + downloads")

    page.goto(f"{server.url}/review/submissions/{sid}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Naive baseline, re-verified")
    # The per-chunk charts: running BPB (a polyline) and score/train seconds (stacked bars).
    bpb_chart = page.locator("svg.line-chart")
    expect(bpb_chart).to_have_count(1)
    expect(bpb_chart.locator("title").first).to_have_text("Running BPB per chunk")
    assert bpb_chart.locator("polyline.series").count() == 1
    assert page.locator("svg.bar-chart rect.bar.s0").count() == 24
    # Rule results from the compliance engine, with file:line evidence links into the logs.
    rules = page.locator("table.rules tbody tr")
    assert rules.count() >= 10
    expect(page.locator("table.rules")).to_contain_text("repro.bpb")
    log_link = page.locator("table.rules a.loc", has_text=re.compile(r"\.log:\d+$")).first
    expect(log_link).to_be_visible()
    # Files with sizes and sha256; cap headroom; claimed vs measured.
    expect(page.locator("table.files")).to_contain_text("train_gpt.py")
    expect(page.locator("#h-files + p")).to_contain_text("headroom")
    expect(page.locator("#measured-bpb")).not_to_have_text("–")
    expect(page.locator("table.attempts")).to_contain_text("gpu-node-3")
    assert a11y_problems(page) == []
    shot(page, "review-submission")

    # Evidence link → line-numbered log view with the cited line marked and targeted.
    href = log_link.get_attribute("href") or ""
    line = href.rsplit("#L", 1)[1]
    log_link.click()
    expect(page.locator(f"tr#L{line}")).to_have_class(re.compile("cited-line"))
    assert page.evaluate("location.hash") == f"#L{line}"
    page.go_back()

    # Flag it with a reason.
    reason = "Logs disagree with the submitted code size; asking the author for the exact script."
    page.get_by_label("Reason (public)").first.fill(reason)
    with page.expect_navigation():
        page.get_by_role("button", name="Flag", exact=True).click()
    expect(page.locator("#done")).to_contain_text("Flagged")
    expect(page.locator(".lead .badge.warn")).to_have_text("flagged")

    # The public entry page shows the flag and its reason; the board no longer lists it as verified.
    page.goto(f"{server.url}/entries/{sid}")
    expect(page.locator("#h-flags")).to_have_text("Flagged by a reviewer")
    expect(page.locator(".flag-reason").first).to_contain_text(reason)
    expect(page.locator("ol.notes")).to_contain_text(reason)
    expect(page.locator("svg.line-chart")).to_have_count(1)
    assert a11y_problems(page) == []
    shot(page, "entry-flagged")
    page.goto(server.url + "/leaderboard")
    expect(page.locator(f'a[href="/entries/{sid}"]')).to_have_count(0)

    # The audit log records the action, actor and reason.
    page.goto(f"{server.url}/review/audit?submission={sid}")
    row = page.locator("table.audit tbody tr", has_text="review.flag")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("user:rita-reviewer")
    expect(row).to_contain_text(reason)
    assert a11y_problems(page) == []
    shot(page, "audit-log")


def test_code_evidence_override_and_publish(server, page, console):
    sid = server.seeded.failing_id
    # The refused publish below answers 409, which the browser logs as a failed resource load.
    console.allowed.append("status of 409")
    login(page, server.url, server.seeded.reviewer_token, f"/review/submissions/{sid}")
    expect(page.locator(".lead")).to_contain_text("verdict fail")
    net_row = page.locator("table.rules tbody tr", has_text="code.network")
    links = net_row.locator("a.loc")
    expect(links).to_have_count(2)
    assert links.all_inner_texts() == ["train_gpt.py:7", "train_gpt.py:31"]

    # Publishing a failing verdict is refused, with the reason on the page.
    page.get_by_label("Note (optional)").fill("looks fine")
    page.get_by_role("button", name="Publish").click()
    expect(page.locator("#action-error")).to_contain_text("verdict is not pass")

    # The code view: highlighted Python, the cited lines marked, the link's line targeted.
    page.locator("table.rules a.loc", has_text="train_gpt.py:31").click()
    expect(page.locator("h1")).to_have_text("train_gpt.py")
    expect(page.locator("tr#L31")).to_have_class(re.compile("cited-line"))
    expect(page.locator("tr#L7")).to_have_class(re.compile("cited-line"))
    expect(page.locator("tr#L31 .tok-k").first).to_be_visible()  # keywords are highlighted
    expect(page.locator("tr#L31")).to_contain_text("urllib.request.urlopen(url)")
    assert a11y_problems(page) == []
    shot(page, "code-view")
    page.goto(f"{server.url}/review/submissions/{sid}")

    # Override the failing rule (with a reason), which re-derives the verdict; then publish.
    rid = net_row.get_attribute("id").removeprefix("rule-")
    net_row.get_by_text("Override…").click()  # the form sits in a <details> to keep the table short
    page.locator(f"#ov-status-{rid}").select_option("pass")
    page.locator(f"#ov-reason-{rid}").fill("The download is dead code: fetch_extra_data is never called in scoring.")
    with page.expect_navigation():
        net_row.get_by_role("button", name="Override").click()
    expect(page.locator("#done")).to_contain_text("overridden")
    expect(page.locator(".lead")).to_contain_text("verdict pass")
    expect(page.locator("table.rules tbody tr", has_text="code.network")).to_contain_text("was fail")
    page.get_by_label("Note (optional)").fill("Checked by hand.")
    with page.expect_navigation():
        page.get_by_role("button", name="Publish").click()
    expect(page.locator("#done")).to_contain_text("Published")

    page.goto(server.url + "/leaderboard")
    verified = page.locator("tr.verified", has_text="Sliding window + downloads")
    expect(verified).to_have_count(1)
    expect(verified.locator(".badge.verified")).to_have_text("verified")
    page.goto(f"{server.url}/entries/{sid}")
    expect(page.locator("ol.notes")).to_contain_text("never called in scoring")
    expect(page.locator("table.rules")).to_contain_text("Reviewer override")


def test_live_progress_while_evaluating(server, page):
    sid = server.seeded.running_id
    login(page, server.url, server.seeded.reviewer_token, f"/review/submissions/{sid}")
    expect(page.locator("#chunks-done")).to_have_text("10")
    expect(page.locator(".progress-box")).to_contain_text("of 40 chunks")
    expect(page.locator(".progress-box")).to_contain_text("ETA")
    shot(page, "review-running")
    # The worker writes more chunks; the page picks them up without a reload.
    add_chunks(server.settings, sid, 25)
    expect(page.locator("#chunks-done")).to_have_text("25", timeout=15_000)
    assert page.locator("svg.bar-chart rect.bar.s0").count() == 25


def test_submitter_token_cannot_open_reviewer_pages(server, page, console):
    # The login page refuses a submitter token (403); the browser logs that status as an error.
    console.allowed.append("status of 403")
    page.goto(server.url + "/review/login")
    page.get_by_label("Reviewer token").fill(server.seeded.submitter_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_contain_text("belongs to a submitter")
    shot(page, "login-refused")
    for path in ("/review", f"/review/submissions/{server.seeded.published_id}", "/review/audit",
                 f"/review/submissions/{server.seeded.failing_id}/code"):
        page.goto(server.url + path)
        assert page.url.startswith(server.url + "/review/login"), path
        expect(page.get_by_role("heading", level=1)).to_have_text("Reviewer sign-in")
    # Bearer tokens do not open pages either, and an action without a session changes nothing.
    with httpx.Client(base_url=server.url) as c:
        auth = {"Authorization": f"Bearer {server.seeded.submitter_token}"}
        assert c.get("/review", headers=auth).status_code == 303
        r = c.post(f"/review/submissions/{server.seeded.failing_id}/flag", data={"reason": "x"}, headers=auth)
        assert r.status_code == 303 and r.headers["location"].startswith("/review/login")


def test_forms_need_the_session_csrf_token(server, page):
    login(page, server.url, server.seeded.reviewer_token)
    sid = server.seeded.running_id
    resp = page.request.post(f"{server.url}/review/submissions/{sid}/note",
                             form={"reason": "forged", "csrf_token": "wrong"}, max_redirects=0)
    assert resp.status == 403
    resp = page.request.post(f"{server.url}/review/submissions/{sid}/note",
                             form={"reason": "forged"}, headers={"Origin": "https://evil.example"}, max_redirects=0)
    assert resp.status == 403
    page.goto(f"{server.url}/review/audit?submission={sid}")
    expect(page.locator("table.audit tbody tr", has_text="review.note")).to_have_count(0)
    # Signing out ends the session on the server: the old cookie no longer opens the queue.
    cookies = page.context.cookies()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reviewer sign-in")
    old = next(c["value"] for c in cookies if c["name"] == "golfcheck_session")
    r = httpx.get(server.url + "/review", cookies={"golfcheck_session": old})
    assert r.status_code == 303


def test_pages_read_without_javascript(server, nojs_page):
    page = nojs_page
    page.goto(server.url + "/leaderboard?track=all")
    expect(page.locator("tr.claimed")).to_have_count(59)
    page.goto(f"{server.url}/entries/{server.seeded.published_id}")
    expect(page.locator("svg.line-chart")).to_have_count(1)
    expect(page.get_by_role("heading", name="Rule results")).to_be_visible()
    login(page, server.url, server.seeded.reviewer_token, f"/review/submissions/{server.seeded.running_id}")
    expect(page.locator(".progress-box")).to_contain_text("chunks")
    expect(page.locator("svg.line-chart")).to_have_count(1)
