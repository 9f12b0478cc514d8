"""The reviewer tools in a real Chromium: the code diff (side by side and unified, line numbers
that land on the same line in the code view, hostile code shown as text), the audit log table
(filter it, expand a row), bulk actions from the queue, and the confirmation being in view after
an action.

Two extra submissions of a submitter of their own ("bob", both rejected, so the shared seeded
queue other tests count is unchanged) carry code with a form feed, a U+2028 and markup.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import pytest
from tests.support.browser_seed import _add_submission
from tests.support.browser import a11y_problems, login, shot
from playwright.sync_api import expect
from sqlalchemy import func, select

from api.core.auth import create_token
from api.core.db import session_scope, utcnow
from api.core.models import AuditLog, Role
from api.core.storage import BlobStore
from gepa.lines import split_lines

pytestmark = pytest.mark.browser

BASE_CODE = "import os\n# page break \x0c here\n# odd \u2028 separator\nprint('train')\n\n\ndef f():\n    return 1\n"
NEW_CODE = BASE_CODE.replace("return 1", "return 2") + "x = '</pre><script>window.pwned=1</script>'\n"


@dataclass(frozen=True)
class Bob:
    first: str
    second: str


@pytest.fixture(scope="module")
def bob(server: Any) -> Bob:
    store = BlobStore(server.settings.blob_dir)
    now = utcnow()
    with session_scope(server.settings) as s:
        user, _, _ = create_token(s, name="bob", role=Role.SUBMITTER)
        ids = []
        for i, code in enumerate((BASE_CODE, NEW_CODE)):
            sub = _add_submission(s, store, server.settings, submitter_id=user.id, name=f"Bob's try {i + 1}",
                                  author="Bob", code=code.encode(), folder=None, claimed=1.3,
                                  created=now - dt.timedelta(hours=3 - i), artifact_size=1000)
            sub.state, sub.verdict = "rejected", "fail"
            ids.append(sub.id)
    return Bob(*ids)


def test_code_diff_against_the_previous_submission(server: Any, page: Any, bob: Bob) -> None:
    login(page, server.url, server.seeded.reviewer_token, f"/review/submissions/{bob.second}")
    page.locator("#diff-previous").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Code diff")
    expect(page.locator("#diff-sides")).to_contain_text("Bob's try 1")
    new_lines = split_lines(NEW_CODE)
    changed_no = next(i + 1 for i, line in enumerate(new_lines) if "return 2" in line)
    markup_no = next(i + 1 for i, line in enumerate(new_lines) if "pwned" in line)

    # Side by side: the changed line's two versions on one row, at the rule engine's numbers.
    change = page.locator("table.diff.split tr.d-change")
    expect(change).to_have_count(1)
    expect(change.locator("th.ln.new")).to_have_text(str(changed_no))
    expect(change.locator("td.src.old")).to_contain_text("return 1")
    expect(change.locator("td.src.new")).to_contain_text("return 2")
    added = page.locator("table.diff.split tr.d-add")
    expect(added).to_have_count(1)
    # The submitted markup is shown as text and never runs.
    expect(added.locator("td.src.new")).to_contain_text("</pre><script>window.pwned=1</script>")
    assert page.evaluate("window.pwned") is None
    assert a11y_problems(page) == []
    shot(page, "review-diff-split")

    # Unified: one removed and two added lines; a line number opens the code view at that line.
    page.get_by_role("link", name="unified").click()
    expect(page.locator("table.diff.unified tr.d-del")).to_have_count(1)
    expect(page.locator("table.diff.unified tr.d-add")).to_have_count(2)
    shot(page, "review-diff-unified")
    page.locator("table.diff.unified tr.d-add th.ln.new a").last.click()
    expect(page.locator("h1")).to_have_text("train_gpt.py")
    assert page.evaluate("location.hash") == f"#L{markup_no}"
    expect(page.locator(f"tr#L{markup_no}")).to_contain_text("window.pwned")
    expect(page.locator(f"tr#L{changed_no}")).to_contain_text("return 2")

    # The first one has nothing earlier to compare with.
    page.goto(f"{server.url}/review/submissions/{bob.first}/diff")
    expect(page.locator("#no-target")).to_contain_text("first submission")


def test_audit_table_filter_and_expand_a_row(server: Any, page: Any) -> None:
    actor, prefix = "worker:cpu-1", "state."
    with session_scope(server.settings) as s:
        expected = s.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.actor == actor, AuditLog.action.startswith(prefix)))
    assert expected
    login(page, server.url, server.seeded.reviewer_token, "/review/audit")
    page.get_by_label("Actor").fill(actor)
    page.get_by_label("Action starts with").fill(prefix)
    with page.expect_navigation():
        page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(expected)
    for text in rows.locator("td:nth-child(3)").all_inner_texts():
        assert text == actor
    for text in rows.locator("td:nth-child(4)").all_inner_texts():
        assert text.startswith(prefix)
    assert "actor=worker%3Acpu-1" in page.url  # the filter is in the address, to share or reload

    # Details are collapsed: one line per row until opened.
    first = rows.first
    pre = first.locator("td.details pre")
    expect(pre).to_be_hidden()
    first.locator("td.details summary").click()
    expect(pre).to_be_visible()
    expect(pre).to_contain_text('"from"')
    others = rows.nth(1).locator("td.details pre")
    expect(others).to_be_hidden()
    assert a11y_problems(page) == []
    shot(page, "audit-table")


def test_confirmation_is_in_view_after_an_action(server: Any, page: Any, bob: Bob) -> None:
    login(page, server.url, server.seeded.reviewer_token, f"/review/submissions/{bob.first}")
    form = page.get_by_label("Note (public)")
    form.scroll_into_view_if_needed()
    form.fill("Looked at the code by hand.")
    with page.expect_navigation():
        page.get_by_role("button", name="Add note").click()
    done = page.locator("#done")
    expect(done).to_contain_text("Note added")
    expect(done).to_be_in_viewport()
    assert "#" not in page.url
    shot(page, "review-confirmation")


def test_bulk_note_from_the_queue_reports_each_item(server: Any, page: Any, bob: Bob) -> None:
    login(page, server.url, server.seeded.reviewer_token)
    page.goto(f"{server.url}/review?submitter=bob&sort=name")
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(2)
    assert rows.locator("td.name").all_inner_texts() == ["Bob's try 1", "Bob's try 2"]
    page.get_by_label("Select all rows").check()
    for box in page.locator("input.pick").all():
        expect(box).to_be_checked()
    page.get_by_label("Action").select_option("note")
    page.get_by_label(re.compile("^Reason")).fill("Both tries share a helper; reviewed together.")
    with page.expect_navigation():
        page.get_by_role("button", name="Apply to selected").click()
    summary = page.locator("#bulk-summary")
    expect(summary).to_contain_text("2 of 2 done")
    expect(summary).to_be_in_viewport()
    expect(page.locator("table.bulk-results tr.ok")).to_have_count(2)
    shot(page, "review-bulk")
    page.get_by_role("link", name="Back to the queue").click()
    assert "submitter=bob" in page.url and "sort=name" in page.url

    # Claim one from the queue: the row shows the reviewer, and the confirmation is at the top.
    with page.expect_navigation():
        page.get_by_role("button", name="Claim Bob's try 2").click()
    expect(page.locator("#done")).to_be_in_viewport()
    expect(page.locator("table.queue tr", has_text="Bob's try 2").locator("td.holder")).to_have_text("rita-reviewer")
