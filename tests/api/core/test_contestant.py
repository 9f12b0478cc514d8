"""`api.core.contestant` as plain functions on a real PostgreSQL database (no HTTP): which states
a submitter may withdraw or re-run from, what each action writes, and that a withdrawn evaluation's
worker is fenced out (its next chunk, heartbeat and result are refused), so nothing it computes is
stored or published. The HTTP side is tests/api/http/test_contestant_web.py."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from sqlalchemy import select

from api.core import contestant, lifecycle, migrate
from api.core.auth import Principal, authenticate, create_token
from api.core.crud import dedupe_key
from api.core.db import dispose_engines, session_scope
from api.core.lifecycle import Claim
from api.core.models import Attempt, AuditLog, Result, Role, State, Submission
from api.core.reviewer import ReviewError
from api.core.settings import Settings
from tests.support.browser_seed import WORKER, Seeded, seed


@pytest.fixture
def db(tmp_path: Any, fresh_pg_url: str) -> Iterator[tuple[Settings, Seeded]]:
    settings = Settings.from_env({"GOLFCHECK_DATA_DIR": str(tmp_path), "GOLFCHECK_DATABASE_URL": fresh_pg_url,
                                  "GOLFCHECK_EMBEDDED_WORKER": "0"})
    migrate.upgrade(settings)
    yield settings, seed(settings)
    dispose_engines()


def _who(settings: Settings, token: str) -> Principal:
    with session_scope(settings) as s:
        p = authenticate(s, token)
    assert p is not None
    return p


def test_withdraw_follows_the_state(db: tuple[Settings, Seeded]) -> None:
    settings, sd = db
    alice = _who(settings, sd.submitter_token)
    with session_scope(settings) as s:
        with pytest.raises(ReviewError) as e:
            contestant.withdraw(s, alice, sd.published_id)
        assert e.value.status == 409 and "part of the leaderboard's history" in e.value.message
    with session_scope(settings) as s:
        out = contestant.withdraw(s, alice, sd.failing_id, "changed my mind")  # scored, not published
        assert out.send_queue is None
    with session_scope(settings) as s:
        sub = s.get(Submission, sd.failing_id)
        assert sub.state == State.WITHDRAWN.value and not contestant.can_withdraw(sub) and not contestant.can_rerun(sub)
        [row] = s.scalars(select(AuditLog).where(AuditLog.submission_id == sub.id,
                                                 AuditLog.action == contestant.WITHDRAW_ACTION))
        details = json.loads(row.details)
        assert row.actor == "user:alice" and details["reason"] == "changed my mind"
        assert details["before"]["state"] == "scored" and details["after"]["state"] == "withdrawn"
        # Its duplicate key no longer matches its files, so an identical upload is a new submission.
        assert sub.dedupe_key != dedupe_key(sub.artifact_sha256, sub.code_sha256, sub.config_sha256)
        with pytest.raises(ReviewError) as e:
            contestant.withdraw(s, alice, sd.failing_id)
        assert e.value.status == 409 and e.value.message == "the submission is already withdrawn"


def test_only_the_submitter_acts(db: tuple[Settings, Seeded]) -> None:
    settings, sd = db
    with session_scope(settings) as s:
        _, _, token = create_token(s, name="bob", role=Role.SUBMITTER)
    bob, rita = _who(settings, token), _who(settings, sd.reviewer_token)
    for who in (bob, rita):  # a reviewer has reviewer actions, not the author's
        with session_scope(settings) as s:
            for act in (lambda: contestant.withdraw(s, who, sd.running_id),
                        lambda: contestant.rerun(s, settings, who, sd.running_id)):
                with pytest.raises(ReviewError) as e:
                    act()
                assert e.value.status == 403
    with session_scope(settings) as s:
        assert s.get(Submission, sd.running_id).state == State.EVALUATING.value
        with pytest.raises(ReviewError) as e:
            contestant.withdraw(s, bob, "no-such-id")
        assert e.value.status == 404


def test_a_withdrawn_evaluation_is_fenced_out(db: tuple[Settings, Seeded]) -> None:
    """The worker still running it finds every write refused: no chunk, no heartbeat, no result."""
    settings, sd = db
    alice = _who(settings, sd.submitter_token)
    with session_scope(settings) as s:
        attempt = s.get(Submission, sd.running_id).attempt
    claim = Claim(sd.running_id, attempt, "eval", WORKER)
    assert lifecycle.heartbeat(settings, claim)  # it owns the row until the withdrawal
    with session_scope(settings) as s:
        contestant.withdraw(s, alice, sd.running_id)
    assert not lifecycle.heartbeat(settings, claim)
    assert not lifecycle.record_chunk(settings, claim, _Chunk(), 40)
    measured = lifecycle.Measured(mode="ttt", val_loss=1.9, val_bpb=1.15, tokens_scored=1, bytes_scored=1,
                                  total_targets=1, elapsed_s=1.0, gpu_seconds=1.0, device="cuda:0",
                                  verifier_version="t", torch_version=None, config_sha256="x", max_val_tokens=None,
                                  chunks=40, coverage="full")
    assert lifecycle.finish_eval(settings, claim, measured, [], verdict="pass") is None
    with session_scope(settings) as s:
        sub = s.get(Submission, sd.running_id)
        assert sub.state == State.WITHDRAWN.value and sub.queue is None
        assert s.scalar(select(Result.id).where(Result.submission_id == sub.id)) is None
        run = s.scalar(select(Attempt).where(Attempt.submission_id == sub.id, Attempt.number == attempt))
        assert run.outcome == "withdrawn" and run.finished_at is not None


class _Chunk:
    index, windows, tokens_scored, bytes_scored = 10, 1, 1, 1
    score_seconds, train_seconds, running_loss, running_bpb, lr = 0.1, 0.1, 1.9, 1.15, 0.0


def test_rerun_only_from_failed(db: tuple[Settings, Seeded]) -> None:
    settings, sd = db
    alice = _who(settings, sd.submitter_token)
    for sid, words in ((sd.published_id, "published"), (sd.failing_id, "scored"), (sd.running_id, "in the pipeline")):
        with session_scope(settings) as s:
            with pytest.raises(ReviewError) as e:
                contestant.rerun(s, settings, alice, sid)
            assert e.value.status == 409 and words in e.value.message
