"""The public leaderboard on a phone (issue 13): in real Chromium at 390 px wide, every row's BPB
stays on screen, the page never scrolls sideways, and the record-progression chart fits; on a
desktop every official column shows. Also the "all runs" toggle and the history label, clicked
and read as a person would."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from tests.support.browser import shot
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser: Any, console: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=3, is_mobile=True, has_touch=True)
    ctx.on("page", console.attach)
    try:
        yield ctx.new_page()
    finally:
        ctx.close()
    assert not console.unexpected(), "console errors:\n" + "\n".join(console.unexpected())


def _inside(box: dict[str, float] | None, width: float) -> bool:
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5


def test_bpb_stays_visible_at_phone_width(server: Any, phone: Any) -> None:
    phone.goto(server.url + "/leaderboard")
    rows = phone.locator("table.board tbody tr.claimed, table.board tbody tr.verified")
    assert rows.count() > 40
    for i in range(rows.count()):
        cell = rows.nth(i).locator("td.bpb")
        expect(cell).to_be_visible()
        assert _inside(cell.bounding_box(), PHONE["width"]), (i, cell.bounding_box())
        assert cell.inner_text().strip().startswith(("1.", "0.", "2.", "3.", "–"))
    # The rank and the name stay too; the optional columns give way.
    head = phone.locator("table.board thead th")
    visible = [h for h in head.all() if h.is_visible()]
    assert [h.inner_text() for h in visible] == ["Rank", "Name", "BPB"]
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width} px"
    chart = phone.locator("svg.progression-chart").first
    expect(chart).to_be_visible()
    assert _inside(chart.bounding_box(), PHONE["width"])
    shot(phone, "leaderboard-phone")


def test_desktop_shows_every_column_and_the_toggle(server: Any, page: Any) -> None:
    page.goto(server.url + "/leaderboard")
    heads = page.locator("table.board").first.locator("thead th")
    assert all(h.is_visible() for h in heads.all()) and heads.count() == 11
    historical = page.locator("tr.claimed .badge.historical")
    assert historical.count() > 0
    expect(historical.first).to_have_text("historical, not reviewed")
    page.get_by_role("link", name="All runs").click()
    expect(page).to_have_url(server.url + "/leaderboard?track=track_10min_16mb&runs=all")
    expect(page.get_by_text("Showing every verified run.")).to_be_visible()
    page.get_by_role("link", name="Best run per participant and method").click()
    expect(page.get_by_text("Showing each participant's best verified run per method.")).to_be_visible()
