"""The persisted state machine on PostgreSQL: claims, fencing, retries, the reaper.

These call `api.core.lifecycle` directly (no worker process) against a fresh PostgreSQL database and
the in-memory broker, so each rule of the pipeline's safety is checked on its own."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import func, select, update

from api.core import crud, lifecycle, migrate
from api.core.auth import Principal, create_token
from api.core.db import session_scope, utcnow
from api.core.lifecycle import Claim, Measured, RuleOutcome, TransitionError
from api.core.models import Attempt, AuditLog, ChunkRecordRow, Result, Role, RuleResult, State, Submission
from api.core.queue import celery_app
from api.core.settings import Settings
from api.core.storage import BlobStore
from api.core.intake import ParsedUpload, UploadedFile


@pytest.fixture()
def settings(fresh_pg_url: str, tmp_path: Path) -> Iterator[Settings]:
    s = Settings(data_dir=tmp_path, database_url=fresh_pg_url, broker_url="memory://localhost/",
                 heartbeat_s=0.1, stale_after_s=60.0, requeue_after_s=60.0, max_attempts=3)
    migrate.upgrade(s)
    _purge(s)
    yield s
    _purge(s)


def _purge(s: Settings) -> None:
    # The in-memory broker is process-global: start every test with empty queues.
    with celery_app(s).connection_for_write() as conn:
        for q in ("checks", "eval"):
            conn.default_channel.queue_declare(queue=q, durable=True, auto_delete=False)
            conn.default_channel.queue_purge(q)


def make_submission(s: Settings, tag: str = "a") -> str:
    store = BlobStore(s.blob_dir)
    art = store.put_bytes(b"artifact " + tag.encode())
    code = store.put_bytes(b"code " + tag.encode())
    upload = ParsedUpload(files=[UploadedFile("artifact", "a.ptz", art), UploadedFile("code", "train_gpt.py", code)])
    with session_scope(s) as session:
        user, _, _ = create_token(session, name=f"user-{tag}", role=Role.SUBMITTER)
        principal = Principal(user.id, user.name, Role.SUBMITTER, 0)
        sub, created = crud.create_submission(session, settings=s, principal=principal, upload=upload)
        assert created
        return sub.id


def row(s: Settings, sid: str) -> Submission:
    with session_scope(s) as session:
        sub = session.get(Submission, sid)
        assert sub is not None
        session.expunge(sub)
        return sub


def count(s: Settings, model: Any, sid: str, *where: Any) -> int:
    with session_scope(s) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(model.submission_id == sid, *where)))


def make_stale(s: Settings, sid: str) -> None:
    with session_scope(s) as session:
        session.execute(update(Submission).where(Submission.id == sid)
                        .values(heartbeat_at=utcnow() - dt.timedelta(hours=1)))


def measured(bpb: float = 1.5) -> Measured:
    return Measured(mode="ttt", val_loss=2.0, val_bpb=bpb, tokens_scored=10, bytes_scored=20, total_targets=10,
                    elapsed_s=1.0, gpu_seconds=0.0, device="cpu", verifier_version="t", torch_version="t",
                    config_sha256="0" * 64, max_val_tokens=None, chunks=1)


class Chunk:
    index, windows, tokens_scored, bytes_scored = 0, 1, 10, 20
    score_seconds, train_seconds, running_loss, running_bpb, lr = 0.1, 0.1, 2.0, 1.5, 0.0


def test_claim_is_exclusive(settings: Settings) -> None:
    sid = make_submission(settings)
    c = lifecycle.claim(settings, sid, "checks", worker="w1", task_id="t1")
    assert c is not None and c.attempt == 1 and row(settings, sid).state == "checking"
    assert lifecycle.claim(settings, sid, "checks", worker="w2", task_id="t2") is None
    assert lifecycle.claim(settings, sid, "eval", worker="w2", task_id="t3") is None
    assert count(settings, AuditLog, sid, AuditLog.action == "task.ignored") == 2
    assert lifecycle.claim(settings, "no-such-id", "checks", worker="w", task_id="x") is None


def test_checks_pass_queue_the_evaluation(settings: Settings) -> None:
    sid = make_submission(settings)
    c = lifecycle.claim(settings, sid, "checks", worker="w", task_id="t")
    assert c is not None
    state = lifecycle.finish_checks(settings, c, [RuleOutcome("r", "pass", "ok")], counted_bytes=10)
    sub = row(settings, sid)
    assert state == State.QUEUED and (sub.state, sub.queue) == ("queued", "eval") and sub.enqueued_at is not None
    assert count(settings, RuleResult, sid) == 1


def test_a_zombie_attempt_cannot_write(settings: Settings) -> None:
    sid = make_submission(settings)
    old = lifecycle.claim(settings, sid, "checks", worker="old", task_id="t1")
    assert old is not None
    make_stale(settings, sid)
    new = lifecycle.claim(settings, sid, "checks", worker="new", task_id="t2")
    assert new is not None and new.attempt == old.attempt + 1
    assert lifecycle.heartbeat(settings, old) is False
    assert lifecycle.finish_checks(settings, old, [RuleOutcome("r", "fail", "x")], counted_bytes=1) is None
    assert lifecycle.reject(settings, old, kind="k", reason="r") is False
    assert lifecycle.platform_fault(settings, old, "boom") is None
    assert count(settings, RuleResult, sid) == 0 and row(settings, sid).state == "checking"
    attempts = {a: o for a, o in _attempts(settings, sid)}
    assert attempts == {1: "abandoned", 2: "running"}
    assert row(settings, sid).stage_failures == 1  # a lost worker counts against the stage


def _attempts(s: Settings, sid: str) -> list[tuple[int, str]]:
    with session_scope(s) as session:
        return [(a.number, a.outcome) for a in session.scalars(
            select(Attempt).where(Attempt.submission_id == sid).order_by(Attempt.number))]


def _to_eval(s: Settings, sid: str) -> Claim:
    c = lifecycle.claim(s, sid, "checks", worker="w", task_id="c")
    assert c is not None
    lifecycle.finish_checks(s, c, [], counted_bytes=1)
    e = lifecycle.claim(s, sid, "eval", worker="w", task_id="e1")
    assert e is not None
    return e


def test_same_message_redelivered_takes_over_at_once(settings: Settings) -> None:
    sid = make_submission(settings)
    first = _to_eval(settings, sid)
    # Fresh heartbeat, different message: a duplicate while the first still runs → ignored.
    assert lifecycle.claim(settings, sid, "eval", worker="w2", task_id="other") is None
    # The very message that started the running attempt: its consumer is gone → take over.
    again = lifecycle.claim(settings, sid, "eval", worker="w2", task_id="e1")
    assert again is not None and again.attempt == first.attempt + 1
    assert lifecycle.record_chunk(settings, first, Chunk(), 1) is False
    assert lifecycle.record_chunk(settings, again, Chunk(), 1) is True
    assert lifecycle.finish_eval(settings, first, measured(), [], verdict="pass") is None
    assert lifecycle.finish_eval(settings, again, measured(), [], verdict="pass") == State.PUBLISHED
    assert lifecycle.finish_eval(settings, again, measured(), [], verdict="pass") is None  # idempotent per (submission, attempt)
    assert count(settings, Result, sid) == 1
    assert count(settings, ChunkRecordRow, sid) == 1


def test_verdict_fail_stays_scored_for_review(settings: Settings) -> None:
    sid = make_submission(settings)
    e = _to_eval(settings, sid)
    state = lifecycle.finish_eval(settings, e, measured(), [RuleOutcome("repro.bpb", "fail", "off", kind="x")], verdict="fail")
    sub = row(settings, sid)
    assert state == State.SCORED and sub.verdict == "fail" and sub.measured_val_bpb == 1.5


def test_unverified_is_never_published(settings: Settings) -> None:
    """Auto-publish is on; an `unverified` verdict (demo cut, non-canonical data, nothing to
    reproduce) still stays `scored`, off the board."""
    assert settings.auto_publish
    sid = make_submission(settings)
    e = _to_eval(settings, sid)
    state = lifecycle.finish_eval(settings, e, measured(), [RuleOutcome("data.canonical", "warn", "demo")],
                                  verdict="unverified")
    assert state == State.SCORED and row(settings, sid).verdict == "unverified"


def test_platform_faults_retry_then_fail(settings: Settings) -> None:
    sid = make_submission(settings)
    for attempt in range(1, settings.max_attempts + 1):
        c = lifecycle.claim(settings, sid, "checks", worker="w", task_id=f"t{attempt}")
        assert c is not None
        state = lifecycle.platform_fault(settings, c, "OSError: disk full")
        assert state == (State.FAILED if attempt == settings.max_attempts else State.QUEUED)
    sub = row(settings, sid)
    assert sub.state == "failed" and sub.reason_kind == "platform-error" and "disk full" in (sub.reason or "")
    assert [o for _, o in _attempts(settings, sid)] == ["error"] * settings.max_attempts


def test_reaper_requeues_a_dead_stage_then_fails_it(settings: Settings) -> None:
    sid = make_submission(settings)
    for n in range(settings.max_attempts):
        c = lifecycle.claim(settings, sid, "checks", worker="w", task_id=f"t{n}")
        assert c is not None
        make_stale(settings, sid)
        report = lifecycle.reap(settings)
        if n < settings.max_attempts - 1:
            assert report.requeued == [sid] and row(settings, sid).state == "queued"
        else:
            assert report.failed == [sid]
    sub = row(settings, sid)
    assert sub.state == "failed" and sub.reason_kind == "worker-lost"
    with session_scope(settings) as session:
        actors = {a for (a,) in session.execute(select(AuditLog.actor).where(AuditLog.submission_id == sid))}
    assert "system:reaper" in actors


def test_reaper_leaves_live_work_alone(settings: Settings) -> None:
    sid = make_submission(settings)
    c = lifecycle.claim(settings, sid, "checks", worker="w", task_id="t")
    assert c is not None
    report = lifecycle.reap(settings)
    assert report.requeued == report.failed == [] and row(settings, sid).state == "checking"


def test_reaper_resends_only_lost_messages(settings: Settings) -> None:
    sid = make_submission(settings)  # committed as queued; its message was never sent
    with session_scope(settings) as session:
        session.execute(update(Submission).where(Submission.id == sid)
                        .values(queued_at=utcnow() - dt.timedelta(hours=1)))
    assert lifecycle.reap(settings).resent == [sid]
    # The message now waits in the broker: nothing is missing, nothing is sent twice.
    with session_scope(settings) as session:
        session.execute(update(Submission).where(Submission.id == sid)
                        .values(enqueued_at=utcnow() - dt.timedelta(hours=1)))
    assert lifecycle.reap(settings).resent == []


def test_illegal_transition_is_refused(settings: Settings) -> None:
    sid = make_submission(settings)
    with session_scope(settings) as session:
        sub = session.get(Submission, sid)
        assert sub is not None
        with pytest.raises(TransitionError):
            lifecycle.transition(session, sub, State.PUBLISHED, actor="test")


def test_resubmitting_after_a_platform_failure_queues_again(settings: Settings) -> None:
    sid = make_submission(settings, "x")
    with session_scope(settings) as session:
        session.execute(update(Submission).where(Submission.id == sid).values(state="failed", queue=None))
    store = BlobStore(settings.blob_dir)
    upload = ParsedUpload(files=[UploadedFile("artifact", "a.ptz", store.put_bytes(b"artifact x")),
                                 UploadedFile("code", "train_gpt.py", store.put_bytes(b"code x"))])
    with session_scope(settings) as session:
        sub0 = session.get(Submission, sid)
        assert sub0 is not None
        principal = Principal(sub0.submitter_id, "user-x", Role.SUBMITTER, 0)
        sub, created = crud.create_submission(session, settings=settings, principal=principal, upload=upload)
        assert not created and sub.id == sid and sub.state == "queued"


def test_queue_position_counts_who_is_ahead(settings: Settings) -> None:
    ids = [make_submission(settings, t) for t in ("q1", "q2", "q3")]
    with session_scope(settings) as session:
        positions = [crud.queue_position(session, session.get(Submission, i)) for i in ids]  # type: ignore[arg-type]
    assert positions == [1, 2, 3]
    c = lifecycle.claim(settings, ids[0], "checks", worker="w", task_id="t")
    assert c is not None
    with session_scope(settings) as session:
        assert crud.queue_position(session, session.get(Submission, ids[0])) is None  # type: ignore[arg-type]
        assert crud.queue_position(session, session.get(Submission, ids[2])) == 2  # type: ignore[arg-type]
