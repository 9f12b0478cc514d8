"""The contestant page (/me) in real Chromium against the production shape: `golfcheck serve` on
PostgreSQL, Redis and real Celery workers. A contestant signs in with the API token the CLI uses,
chooses a records folder (the tiny record the service tests build) in the upload form, watches the
per-chunk progress while it evaluates, and reads the verdict with its evidence; a refused upload
shows the API's message in the form with the focus on it; the list of their submissions fits a
phone screen."""

from __future__ import annotations

import re
import uuid
from typing import Any, Iterator

import pytest
from tests.support.browser import a11y_problems, shot
from playwright.sync_api import expect
from tests.support.service import REDIS_URL, Proc, Server, base_env, start_server, start_worker

pytestmark = [pytest.mark.browser, pytest.mark.services]

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pg_url: str, redis_prefix: str) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("contestant-browser")
    env = base_env(data, GOLFCHECK_DATABASE_URL=pg_url, GOLFCHECK_BROKER_URL=REDIS_URL,
                   GOLFCHECK_BROKER_PREFIX=redis_prefix + "browser:",
                   # Slow enough that the page's live progress can be watched chunk by chunk.
                   GOLFCHECK_EVAL_CHUNK_DELAY_S="1.5")
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


@pytest.fixture(scope="module")
def token(stack: Server) -> str:
    return stack.token("submitter", f"paula-{uuid.uuid4().hex[:6]}")


def sign_in(page: Any, base: str, token: str, path: str = "/me") -> None:
    page.goto(base + path)
    expect(page).to_have_url(re.compile(r"/me/login\?next="))
    assert a11y_problems(page) == []
    page.get_by_label("API token").fill(token)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def test_upload_a_folder_watch_it_run_and_read_the_verdict(stack: Server, token: str, page: Any,
                                                          tiny: dict[str, Any]) -> None:
    sign_in(page, stack.url, token)
    expect(page.get_by_role("heading", name="My submissions")).to_be_visible()
    expect(page.get_by_text("No submissions yet")).to_be_visible()
    page.get_by_role("link", name="Upload a submission").click()
    expect(page.get_by_role("heading", name="Upload a submission")).to_be_visible()
    assert a11y_problems(page) == []
    page.get_by_label("Folder").set_input_files(str(tiny["dir"]))
    page.get_by_role("button", name="Upload and verify").click()
    # The upload's own progress bar shows while the files go up.
    expect(page.locator("#upload-progress")).to_be_visible()
    page.wait_for_url(re.compile(r"/me/submissions/[0-9a-f-]{36}\?done=uploaded"), timeout=120_000)
    expect(page.locator("#done")).to_contain_text("Uploaded")
    # Live progress per chunk while it evaluates (the fragment the page polls, swapped in place).
    progress = page.locator("#eval-progress")
    progress.wait_for(state="attached", timeout=300_000)
    assert int(progress.get_attribute("max")) >= 1
    # When it ends, the page reloads itself with the verdict and the rules' evidence.
    expect(page.locator("#state")).to_have_text("published", timeout=300_000)
    expect(page.locator("#verdict")).to_have_text("verdict pass")
    expect(page.locator("#measured-bpb")).to_have_text(f"{tiny['expected']['val_bpb']:.6f}")
    rules = page.locator("table.rules tbody tr")
    assert rules.count() >= 3
    statuses = {rules.nth(i).locator(".badge").first.inner_text() for i in range(rules.count())}
    assert statuses <= {"pass", "warn", "skip"}, statuses
    assert page.locator("table.rules ul.evidence li").count() >= 1  # evidence, not just a status
    expect(page.locator("svg").filter(has_text="Running BPB").first).to_be_visible()
    assert a11y_problems(page) == []
    # Published: the author cannot withdraw it, and the page says why instead of offering the form.
    assert page.locator("#withdraw-form").count() == 0
    expect(page.locator("#no-actions")).to_contain_text("Published entries stay")
    shot(page, "contestant-verdict")
    page.get_by_role("link", name="My submissions").first.click()
    row = page.locator("table.mine tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".badge.st-pass")).to_be_visible()


def test_refused_upload_shows_the_reason_with_focus(stack: Server, token: str, page: Any, console: Any,
                                                    tmp_path: Any) -> None:
    console.allowed.append("status of 422")
    sign_in(page, stack.url, token, "/me/upload")
    bogus = tmp_path / "record.tar.gz"
    bogus.write_bytes(b"not an archive")
    page.get_by_label("Or a bundle").set_input_files(str(bogus))
    page.get_by_role("button", name="Upload and verify").click()
    error = page.locator("#upload-error")
    expect(error).to_contain_text("bundle must be a .tar.gz, .tar or .zip archive of a records folder")
    expect(error).to_contain_text("Nothing was uploaded")
    expect(error).to_be_focused()
    # The form is usable again (the page swapped in the answer; the script re-armed it).
    expect(page.get_by_role("button", name="Upload and verify")).to_be_enabled()
    assert a11y_problems(page) == []


def test_my_submissions_fits_a_phone(stack: Server, token: str, browser: Any, console: Any) -> None:
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=3, is_mobile=True, has_touch=True)
    ctx.on("page", console.attach)
    try:
        phone = ctx.new_page()
        sign_in(phone, stack.url, token)
        expect(phone.get_by_role("heading", name="My submissions")).to_be_visible()
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page scrolls sideways: {width} px"
        for cell in phone.locator("table.mine tbody td.bpb").all():
            box = cell.bounding_box()
            assert box is not None and box["x"] + box["width"] <= PHONE["width"] + 0.5
        phone.goto(stack.url + "/me/upload")
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the upload form scrolls sideways: {width} px"
        shot(phone, "contestant-phone")
    finally:
        ctx.close()
    assert not console.unexpected(), "console errors:\n" + "\n".join(console.unexpected())


def test_folder_upload_works_without_javascript(stack: Server, nojs_page: Any, tiny: dict[str, Any]) -> None:
    """The plain form post: the browser itself sends each file of the chosen folder with its path."""
    page = nojs_page
    sign_in(page, stack.url, stack.token("submitter", f"quinn-{uuid.uuid4().hex[:6]}"), "/me/upload")
    page.get_by_label("Folder").set_input_files(str(tiny["dir"]))
    with page.expect_navigation():
        page.get_by_role("button", name="Upload and verify").click()
    expect(page).to_have_url(re.compile(r"/me/submissions/[0-9a-f-]{36}\?done=uploaded"))
    files = page.locator("section[aria-labelledby='h-files'] table tbody tr")
    roles = {files.nth(i).locator("td").first.inner_text() for i in range(files.count())}
    assert {"artifact", "code", "config", "submission_json", "log"} <= roles, roles
