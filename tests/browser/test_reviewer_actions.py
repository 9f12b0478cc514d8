"""`api.core.reviewer` actions as plain functions (no browser), on a real SQLite database: each one
changes what it should, refuses what it should, and writes its audit-log and review rows.
Also the pieces the pages are drawn with: SVG charts and the code highlighter."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from tests.support.browser_seed import seed
from sqlalchemy import select

from api.core import reviewer
from api.http import charts
from api.core.auth import authenticate
from api.core.db import dispose_engines, session_scope
from api.core.models import AuditLog, Flag, ReviewAction, RuleResult, State, StateTransition, Submission
from api.http.pages.code import highlight_python
from api.core.settings import Settings
from api.core import migrate


@pytest.fixture
def db(tmp_path):
    settings = Settings.from_env({"GOLFCHECK_DATA_DIR": str(tmp_path), "GOLFCHECK_EMBEDDED_WORKER": "0"})
    migrate.upgrade(settings)
    seeded = seed(settings)
    yield settings, seeded
    dispose_engines()


def _who(settings, token):
    with session_scope(settings) as s:
        return authenticate(s, token)


def _audit(s, sid, action):
    return list(s.scalars(select(AuditLog).where(AuditLog.submission_id == sid, AuditLog.action == action)))


def test_flag_restore_disqualify_write_audit_rows(db):
    settings, sd = db
    who = _who(settings, sd.reviewer_token)
    with session_scope(settings) as s:
        with pytest.raises(reviewer.ReviewError) as e:
            reviewer.flag(s, who, sd.published_id, "   ")
        assert e.value.status == 400
        reviewer.flag(s, who, sd.published_id, "size looks wrong")
    with session_scope(settings) as s:
        sub = s.get(Submission, sd.published_id)
        assert sub.flagged and not sub.disqualified
        [row] = _audit(s, sd.published_id, "review.flag")
        details = json.loads(row.details)
        assert row.actor == "user:rita-reviewer" and details["reason"] == "size looks wrong"
        assert details["before"] == {"flagged": False} and details["after"] == {"flagged": True}
        assert s.scalar(select(Flag.status).where(Flag.submission_id == sub.id)) == "open"
        reviewer.restore(s, who, sd.published_id, "author sent the right logs")
    with session_scope(settings) as s:
        sub = s.get(Submission, sd.published_id)
        assert not sub.flagged
        assert s.scalar(select(Flag.status).where(Flag.submission_id == sub.id)) == "resolved"
        with pytest.raises(reviewer.ReviewError):
            reviewer.restore(s, who, sd.published_id, "again")  # nothing to restore
        reviewer.disqualify(s, who, sd.published_id, "trained on validation data")
    with session_scope(settings) as s:
        assert s.get(Submission, sd.published_id).disqualified
        actions = [a.action for a in s.scalars(select(ReviewAction).where(ReviewAction.submission_id == sd.published_id)
                                                .order_by(ReviewAction.id))]
        assert actions == ["flag", "restore", "disqualify"]


def test_submitter_cannot_act(db):
    settings, sd = db
    who = _who(settings, sd.submitter_token)
    with session_scope(settings) as s:
        with pytest.raises(reviewer.ReviewError) as e:
            reviewer.flag(s, who, sd.published_id, "mine")
        assert e.value.status == 403
    with session_scope(settings) as s:
        assert not s.get(Submission, sd.published_id).flagged
        assert _audit(s, sd.published_id, "review.flag") == []


def test_override_rederives_verdict_and_can_unpublish(db):
    settings, sd = db
    who = _who(settings, sd.reviewer_token)
    with session_scope(settings) as s:
        rr = s.scalar(select(RuleResult).where(RuleResult.submission_id == sd.published_id,
                                               RuleResult.rule == "code.network"))
        with pytest.raises(reviewer.ReviewError):
            reviewer.override_rule(s, who, sd.published_id, rr.id, "maybe", "x")
        # What was measured (coverage of the validation set, reproduction) cannot be overridden.
        for measured in ("data.canonical", "repro.bpb"):
            m = s.scalar(select(RuleResult).where(RuleResult.submission_id == sd.published_id,
                                                  RuleResult.rule == measured))
            with pytest.raises(reviewer.ReviewError, match="cannot be overridden"):
                reviewer.override_rule(s, who, sd.published_id, m.id, "fail", "x")
        reviewer.override_rule(s, who, sd.published_id, rr.id, "fail", "numbers do not match the logs")
    with session_scope(settings) as s:
        sub = s.get(Submission, sd.published_id)
        # A failing override takes a published result back to scored (off the leaderboard).
        assert sub.verdict == "fail" and sub.state == State.SCORED.value
        rr = s.get(RuleResult, rr.id)
        assert rr.status == "pass" and rr.override_status == "fail"  # the original stays
        [row] = _audit(s, sd.published_id, "review.override")
        d = json.loads(row.details)
        assert d["before"]["verdict"] == "pass" and d["after"]["verdict"] == "fail" and d["rule"] == "code.network"
        # Overriding back to the original status clears the override; then it can be published again.
        reviewer.override_rule(s, who, sd.published_id, rr.id, "pass", "checked again: fine")
        assert s.get(Submission, sd.published_id).verdict == "pass"
        reviewer.publish(s, who, sd.published_id)
    with session_scope(settings) as s:
        assert s.get(Submission, sd.published_id).state == State.PUBLISHED.value
        assert s.get(RuleResult, rr.id).override_status is None


def test_rerun_queues_checks_and_refuses_running(db):
    settings, sd = db
    who = _who(settings, sd.reviewer_token)
    with session_scope(settings) as s:
        with pytest.raises(reviewer.ReviewError):
            reviewer.request_rerun(s, who, sd.running_id, "again")  # already in the pipeline
        out = reviewer.request_rerun(s, who, sd.failing_id, "new verifier version")
        assert out.send_queue == "checks"
    with session_scope(settings) as s:
        sub = s.get(Submission, sd.failing_id)
        assert sub.state == State.QUEUED.value and sub.queue == "checks" and sub.verdict == "pending"
        last = s.scalars(select(StateTransition).where(StateTransition.submission_id == sub.id)
                         .order_by(StateTransition.id.desc())).first()
        assert last.to_state == "queued" and "new verifier version" in last.reason
        assert _audit(s, sub.id, "review.rerun")


def test_line_chart_is_valid_svg_with_accessible_name():
    svg = str(charts.line_chart([1.3, 1.25, 1.22], title="Running <BPB>", y_label="bpb", ref=1.2, ref_label="claimed"))
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.get("role") == "img"
    assert root.find(f"{ns}title").text == "Running <BPB>"  # escaped in the markup, intact as text
    assert root.find(f"{ns}polyline") is not None
    empty = ET.fromstring(str(charts.line_chart([], title="none")))
    assert "no data yet" in "".join(empty.itertext())


def test_stacked_bars_bucket_long_runs():
    rows = [(1.0, 2.0)] * 1000
    root = ET.fromstring(str(charts.stacked_bars(rows, ["score", "train"], title="t", max_bars=100)))
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if "bar" in (r.get("class") or "")]
    assert len(bars) == 200  # 100 buckets x 2 series
    sums, ranges = charts.bucket(rows, 100)
    assert sums[0] == [10.0, 20.0] and ranges[-1] == (990, 999)


def test_size_bar_marks_over_cap():
    assert "over" in str(charts.size_bar(17_000_000, 16_000_000))
    assert "over" not in str(charts.size_bar(15_000_000, 16_000_000))
    assert "unknown" in str(charts.size_bar(None, 16_000_000))


def test_highlighter_escapes_and_survives_broken_code():
    lines = highlight_python('x = "<script>"  # </td>\ndef f(:\n    return 1\n')
    assert len(lines) == 3
    assert "&lt;script&gt;" in lines[0].html and "<script>" not in lines[0].html
    assert 'class="tok-c"' in lines[0].html
    assert "tok-k" in lines[1].html or "def" in lines[1].html
