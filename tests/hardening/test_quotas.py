"""Quotas: a daily limit per submitter (UTC day) reported as remaining/resets_at, platform
failures not counted, a cap on submissions in progress (also under concurrent uploads), and a
rate limit on the upload route. Against `limits_server` (daily 4, 2 in progress, 8 uploads per
minute; no worker, so accepted submissions stay queued until a test finishes them in SQL)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import httpx
import pytest
from tests.support.hardening import HServer, assert_no_orphans, files_for, unique_code

from api.core.quota import utc_day
from api.core.quota import RateLimiter


def post(c: httpx.Client, tiny: dict[str, Any], tag: str) -> httpx.Response:
    return c.post("/api/v1/submissions", files=files_for(tiny, code=unique_code(tiny, tag)))


def finish(h: HServer, sid: str, state: str) -> None:
    """Stand in for the pipeline: the submission reaches a terminal state."""
    h.sql("UPDATE submissions SET state = %s, queue = NULL WHERE id = %s", state, sid)


def next_utc_midnight() -> str:
    now = dt.datetime.now(dt.timezone.utc)
    return (now.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)).isoformat().replace("+00:00", "Z")


def test_utc_day_window() -> None:
    plus5 = dt.timezone(dt.timedelta(hours=5))
    start, end = utc_day(dt.datetime(2026, 1, 2, 3, 30, tzinfo=plus5))  # 2026-01-01 22:30 UTC
    assert start == dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert end == dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)


def test_responses_carry_remaining_and_reset(limits_server: HServer, tiny: dict[str, Any]) -> None:
    with limits_server.server.client(limits_server.server.token("submitter", "q-report")) as c:
        resp = post(c, tiny, "report")
        assert resp.status_code == 202, resp.text
        q = resp.json()["quota"]
        assert q == {"daily_limit": 4, "used_today": 1, "remaining": 3, "resets_at": next_utc_midnight(),
                     "active": 1, "max_active": 2}
        assert resp.headers["x-quota-remaining"] == "3" and resp.headers["x-quota-reset"] == q["resets_at"]
        again = c.get("/api/v1/quota")
        assert again.status_code == 200 and again.json() == q
        # The same upload again is the existing submission (200) and costs nothing.
        dup = c.post("/api/v1/submissions", files=files_for(tiny, code=_same_code(limits_server, resp.json()["id"])))
        assert dup.status_code == 200 and dup.json()["duplicate"] is True
        assert dup.json()["quota"]["used_today"] == 1


def _same_code(h: HServer, sid: str) -> bytes:
    sha = h.sql("SELECT code_sha256 FROM submissions WHERE id = %s", sid)[0][0]
    return (h.data_dir / "blobs" / sha[:2] / sha[2:4] / sha).read_bytes()


def test_concurrency_cap(limits_server: HServer, tiny: dict[str, Any]) -> None:
    h = limits_server
    with h.server.client(h.server.token("submitter", "q-active")) as c:
        first, second = post(c, tiny, "a1"), post(c, tiny, "a2")
        assert (first.status_code, second.status_code) == (202, 202)
        rows = h.sql("SELECT count(*) FROM submissions")[0][0]
        third = post(c, tiny, "a3")
        assert third.status_code == 429, third.text
        body = third.json()
        assert body["kind"] == "too-many-active" and body["quota"]["active"] == 2 and "retry-after" in third.headers
        assert h.sql("SELECT count(*) FROM submissions")[0][0] == rows
        finish(h, first.json()["id"], "published")
        assert post(c, tiny, "a4").status_code == 202


def test_daily_quota_and_platform_failures(limits_server: HServer, tiny: dict[str, Any]) -> None:
    h = limits_server
    with h.server.client(h.server.token("submitter", "q-daily")) as c:
        ids = []
        for i in range(4):
            resp = post(c, tiny, f"d{i}")
            assert resp.status_code == 202, resp.text
            ids.append(resp.json()["id"])
            finish(h, ids[-1], "rejected")  # the submitter's fault: it counts
        over = post(c, tiny, "d4")
        assert over.status_code == 429, over.text
        body = over.json()
        assert body["kind"] == "quota-exceeded"
        assert body["quota"]["remaining"] == 0 and body["quota"]["resets_at"] == next_utc_midnight()
        assert 0 < int(over.headers["retry-after"]) <= 86400
        assert next_utc_midnight() in body["detail"]
        # A submission that failed through the platform's fault gives its slot back.
        finish(h, ids[0], "failed")
        assert c.get("/api/v1/quota").json()["remaining"] == 1
        assert post(c, tiny, "d5").status_code == 202
        # Yesterday's submissions do not count today.
        h.sql("UPDATE submissions SET created_at = created_at - interval '1 day' WHERE id = %s", ids[1])
        assert c.get("/api/v1/quota").json()["remaining"] == 1


def test_per_user_override(limits_server: HServer, tiny: dict[str, Any]) -> None:
    h = limits_server
    with h.server.client(h.server.token("submitter", "q-override")) as c:
        h.sql("UPDATE users SET daily_quota = 1 WHERE name = 'q-override'")
        assert post(c, tiny, "o1").status_code == 202
        resp = post(c, tiny, "o2")
        assert resp.status_code == 429 and resp.json()["quota"]["daily_limit"] == 1


def test_concurrent_uploads_cannot_overrun_the_cap(limits_server: HServer, tiny: dict[str, Any]) -> None:
    """Four uploads at once by one submitter with room for two: the count and the insert happen
    under a lock on the user's row, so exactly two are accepted and the others leave no trace."""
    h = limits_server
    token = h.server.token("submitter", "q-race")
    barrier = threading.Barrier(4)
    results: list[int] = []

    def one(i: int) -> None:
        with h.server.client(token) as c:
            files = files_for(tiny, code=unique_code(tiny, f"race{i}"))
            barrier.wait(timeout=30)
            results.append(c.post("/api/v1/submissions", files=files).status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == [202, 202, 429, 429]
    assert h.sql("SELECT count(*) FROM submissions s JOIN users u ON u.id = s.submitter_id "
                 "WHERE u.name = 'q-race'")[0][0] == 2
    assert_no_orphans(h.sql, h.data_dir)


def test_upload_rate_limit(limits_server: HServer) -> None:
    """Eight upload attempts a minute, whatever their outcome; the ninth is refused before its
    body is read, with Retry-After. Other users are not affected."""
    h = limits_server
    with h.server.client(h.server.token("submitter", "q-rate")) as c:
        statuses = [c.post("/api/v1/submissions", files={"track": (None, "x")}).status_code for _ in range(8)]
        assert statuses == [422] * 8
        resp = c.post("/api/v1/submissions", files={"track": (None, "x")})
        assert resp.status_code == 429 and resp.json()["kind"] == "rate-limited"
        assert int(resp.headers["retry-after"]) >= 1
        assert c.get("/api/v1/quota").status_code == 200  # only the upload route is limited
    with h.server.client(h.server.token("submitter", "q-rate-other")) as c:
        assert c.post("/api/v1/submissions", files={"track": (None, "x")}).status_code == 422


@pytest.mark.parametrize("per_minute", [1, 60])
def test_token_bucket_refills(per_minute: int) -> None:
    now = [0.0]
    rl = RateLimiter(per_minute, clock=lambda: now[0])
    assert all(rl.take("u") == 0 for _ in range(per_minute))
    wait = rl.take("u")
    assert wait == pytest.approx(60 / per_minute)
    now[0] += wait
    assert rl.take("u") == 0 and rl.take("other") == 0
