"""The persisted submission state machine, and every write a worker or the reaper makes.

    received → queued(checks) → checking → queued(eval) → evaluating → scored → published
                                  ↘ rejected (the submission is at fault, with a reason)
                                  ↘ failed   (the platform is at fault, after retries ran out)
    any state before published ↘ withdrawn (its submitter took it back; final; api.core.contestant)

Rules that make the pipeline safe under redelivery, duplicate messages and dead workers:
- A worker *claims* a stage with a compare-and-set on (state, attempt); the claim increments
  `attempt`, which is the fencing token. Every later write by that worker is conditional on
  `attempt` still being its own, so a zombie from an earlier attempt cannot overwrite a newer
  one, and a duplicate message finds nothing to claim.
- A claim may take over a running stage whose heartbeat is older than `stale_after_s` (the
  worker died); that counts as a platform fault of the stage.
- Each state change and its `state_transitions` + `audit_log` rows commit in one transaction;
  messages are sent only after that commit (`api.core.queue.enqueue`).
- The reaper re-queues running stages whose heartbeat stopped and re-sends queued work whose
  message was lost (more rows waiting than messages in the broker queue).
"""

from __future__ import annotations

import dataclasses
import functools
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from api.core import queue as task_queue
from api.core.db import session_scope, utcnow
from api.core.models import (
    Attempt,
    AuditLog,
    Blob,
    ChunkRecordRow,
    Queue,
    Result,
    RuleResult,
    State,
    StateTransition,
    Submission,
    Verdict,
)
from api.core.settings import Settings
from api.core.storage import BlobStore

log = logging.getLogger("golfcheck.lifecycle")

ALLOWED: dict[State | None, frozenset[State]] = {
    None: frozenset({State.RECEIVED}),
    State.RECEIVED: frozenset({State.QUEUED, State.REJECTED, State.FAILED, State.WITHDRAWN}),
    State.QUEUED: frozenset({State.CHECKING, State.EVALUATING, State.REJECTED, State.FAILED, State.WITHDRAWN}),
    State.CHECKING: frozenset({State.QUEUED, State.REJECTED, State.FAILED, State.WITHDRAWN}),
    State.EVALUATING: frozenset({State.SCORED, State.QUEUED, State.REJECTED, State.FAILED, State.WITHDRAWN}),
    State.SCORED: frozenset({State.PUBLISHED, State.QUEUED, State.WITHDRAWN}),
    State.PUBLISHED: frozenset({State.SCORED, State.QUEUED}),
    State.REJECTED: frozenset({State.QUEUED}),
    State.FAILED: frozenset({State.QUEUED}),
    # Final: a withdrawn submission never runs or publishes again (api.core.contestant).
    State.WITHDRAWN: frozenset(),
}

RUN_STATE = {Queue.CHECKS.value: State.CHECKING, Queue.EVAL.value: State.EVALUATING}


class TransitionError(ValueError):
    pass


@dataclass(frozen=True)
class Claim:
    submission_id: str
    attempt: int
    stage: str
    worker: str


@dataclass(frozen=True)
class RuleOutcome:
    """One rule's result as the pipeline stores it (adapted from gepa.compliance results)."""

    rule: str
    status: str                 # pass | warn | fail | skip
    message: str = ""
    title: str = ""
    evidence: Any = None
    kind: str | None = None     # for failures: the rejection kind (bad-config, artifact-*, over-cap, ...)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_result(cls, r: Any) -> "RuleOutcome":
        """Store a `gepa.compliance` RuleResult as it is (same id, status, summary and evidence)."""
        evidence = [{k: v for k, v in dataclasses.asdict(e).items() if v is not None} for e in r.evidence]
        return cls(rule=r.rule, status=r.status, message=r.summary, title=r.description, evidence=evidence or None,
                   kind=r.kind)


@dataclass
class ReapReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)


def _audit(session: Session, *, actor: str, action: str, submission_id: str | None = None,
           attempt: int | None = None, user_id: int | None = None, **details: Any) -> None:
    session.add(AuditLog(actor=actor, action=action, submission_id=submission_id, attempt=attempt,
                         user_id=user_id, details=json.dumps(details, default=str) if details else None))


def _transition_rows(session: Session, sid: str, from_state: State | None, to_state: State, attempt: int,
                     actor: str, reason: str | None = None, **details: Any) -> None:
    if to_state not in ALLOWED[from_state]:
        raise TransitionError(f"{from_state} → {to_state} is not a legal transition")
    session.add(StateTransition(submission_id=sid, from_state=from_state.value if from_state else None,
                                to_state=to_state.value, attempt=attempt, actor=actor, reason=reason))
    _audit(session, actor=actor, action=f"state.{to_state.value}", submission_id=sid, attempt=attempt,
           **({"from": from_state.value if from_state else None, "reason": reason} | details))


def _cas(session: Session, sid: str, *, states: Iterable[State], attempt: int | None, values: dict[str, Any],
         extra: Any = None) -> bool:
    """UPDATE … WHERE id AND state IN states [AND attempt = attempt]; True if exactly one row changed."""
    stmt = update(Submission).where(Submission.id == sid, Submission.state.in_([s.value for s in states]))
    if attempt is not None:
        stmt = stmt.where(Submission.attempt == attempt)
    if extra is not None:
        stmt = stmt.where(extra)
    values = {"updated_at": utcnow(), **values}
    res = session.execute(stmt.values(**values).execution_options(synchronize_session=False))
    return res.rowcount == 1  # type: ignore[attr-defined]


def transition(session: Session, sub: Submission, to_state: State, *, actor: str, reason: str | None = None,
               queue: str | None = None, **details: Any) -> None:
    """Move a loaded row (API and reviewer paths, inside the caller's transaction)."""
    from_state = State(sub.state) if sub.state else None
    if to_state not in ALLOWED[from_state]:
        raise TransitionError(f"{from_state.value if from_state else None} → {to_state.value} is not allowed")
    now = utcnow()
    sub.state = to_state.value
    sub.updated_at = now
    if to_state == State.QUEUED:
        sub.queue = queue or Queue.CHECKS.value
        sub.queued_at = now
        sub.enqueued_at = None
        sub.stage_failures = 0
    if sub.id is None:
        raise TransitionError("flush the submission before recording transitions")
    _transition_rows(session, sub.id, from_state, to_state, sub.attempt, actor, reason, **details)


# -- worker side -------------------------------------------------------------------------------


def claim(settings: Settings, submission_id: str, stage: str, *, worker: str, task_id: str | None = None) -> Claim | None:
    """Claim `stage` of a submission for this worker, or None if there is nothing to do.

    Nothing to do: unknown id, the row is in another state (a duplicate or stale message), or a
    live attempt holds it. A stage whose heartbeat went stale is taken over (attempt + 1)."""
    run_state = RUN_STATE[stage]
    actor = f"worker:{worker}"
    now = utcnow()
    with session_scope(settings) as session:
        sub = session.get(Submission, submission_id)
        if sub is None:
            log.warning("task for unknown submission %s ignored", submission_id)
            return None
        state = State(sub.state)
        takeover = False
        if state == State.QUEUED and sub.queue == stage:
            pass
        elif state == run_state and (sub.heartbeat_at is None
                                     or sub.heartbeat_at < now - dt.timedelta(seconds=settings.stale_after_s)
                                     or _is_redelivery(session, sub, task_id)):
            takeover = True
        else:
            log.info("nothing to claim for %s (state %s, queue %s)", submission_id, sub.state, sub.queue)
            _audit(session, actor=actor, action="task.ignored", submission_id=submission_id, attempt=sub.attempt,
                   stage=stage, state=sub.state, task_id=task_id)
            return None
        failures = sub.stage_failures + (1 if takeover else 0)
        old_attempt = sub.attempt
        if takeover and failures >= settings.max_attempts:
            reason = f"the {stage} stage stopped {failures} times without finishing (worker lost)"
            if _cas(session, submission_id, states=[state], attempt=old_attempt,
                    values={"state": State.FAILED.value, "reason": reason, "reason_kind": "worker-lost",
                            "stage_failures": failures}):
                _close_attempt(session, submission_id, old_attempt, "abandoned", "heartbeat stopped")
                _transition_rows(session, submission_id, state, State.FAILED, old_attempt, actor, reason)
            return None
        new_attempt = old_attempt + 1
        values: dict[str, Any] = {"state": run_state.value, "attempt": new_attempt, "heartbeat_at": now,
                                  "worker": worker, "stage_failures": failures, "queue": stage}
        if stage == Queue.EVAL.value:
            values |= {"eval_started_at": now, "chunks_done": 0, "chunks_total": None}
        if not _cas(session, submission_id, states=[state], attempt=old_attempt, values=values):
            return None  # another worker won the race
        if takeover:
            _close_attempt(session, submission_id, old_attempt, "abandoned", "worker lost; taken over by a redelivery")
            _transition_rows(session, submission_id, state, State.QUEUED, old_attempt, actor,
                             f"attempt {old_attempt} was lost (worker died or stopped heartbeating); redelivered")
            _transition_rows(session, submission_id, State.QUEUED, run_state, new_attempt, actor, task_id=task_id)
        else:
            _transition_rows(session, submission_id, state, run_state, new_attempt, actor, task_id=task_id)
        session.add(Attempt(submission_id=submission_id, number=new_attempt, stage=stage, worker=worker,
                            task_id=task_id, started_at=now, heartbeat_at=now))
    return Claim(submission_id, new_attempt, stage, worker)


def _is_redelivery(session: Session, sub: Submission, task_id: str | None) -> bool:
    """The running attempt was started by this very message: the broker handed it out again, which
    with late acks happens only when the consumer that held it is gone (worker process killed,
    connection lost). Taking over at once beats waiting for the heartbeat to go stale."""
    if not task_id:
        return False
    current = session.scalar(select(Attempt.task_id).where(Attempt.submission_id == sub.id,
                                                           Attempt.number == sub.attempt))
    return current == task_id


def _close_attempt(session: Session, sid: str, number: int, outcome: str, error: str | None = None,
                   device: str | None = None) -> None:
    values: dict[str, Any] = {"outcome": outcome, "finished_at": utcnow()}
    if error is not None:
        values["error"] = error[:4000]
    if device is not None:
        values["device"] = device
    session.execute(update(Attempt).where(Attempt.submission_id == sid, Attempt.number == number,
                                          Attempt.outcome == "running").values(**values))


def heartbeat(settings: Settings, c: Claim) -> bool:
    """Touch the row; False means this attempt no longer owns the submission (stop working)."""
    now = utcnow()
    with session_scope(settings) as session:
        ok = _cas(session, c.submission_id, states=[RUN_STATE[c.stage]], attempt=c.attempt,
                  values={"heartbeat_at": now})
        if ok:
            session.execute(update(Attempt).where(Attempt.submission_id == c.submission_id,
                                                  Attempt.number == c.attempt).values(heartbeat_at=now))
    return ok


def _store_rules(session: Session, c: Claim, stage: str, outcomes: Iterable[RuleOutcome]) -> None:
    for o in outcomes:
        session.add(RuleResult(submission_id=c.submission_id, attempt=c.attempt, stage=stage, rule=o.rule[:80],
                               title=(o.title or None) and o.title[:300], status=o.status, message=o.message,
                               evidence=json.dumps(o.evidence, default=str) if o.evidence is not None else None))


def finish_checks(settings: Settings, c: Claim, outcomes: list[RuleOutcome], *, counted_bytes: int | None,
                  family: tuple[str, str] | None = None) -> State | None:
    """Store check results; reject on the first failing rule, else queue for evaluation.
    `family` is the detected model family's (name, title), kept on the row for every view.

    Returns the new state, or None if this attempt lost the submission (nothing written)."""
    actor = f"worker:{c.worker}"
    failing = [o for o in outcomes if o.status == "fail"]
    detected = {"family": family[0][:40], "family_title": family[1][:200]} if family else {}
    with session_scope(settings) as session:
        if failing:
            first = failing[0]
            reason = "; ".join(f"{o.rule}: {o.message}" for o in failing)[:4000]
            ok = _cas(session, c.submission_id, states=[State.CHECKING], attempt=c.attempt,
                      values={"state": State.REJECTED.value, "reason": reason, "reason_kind": first.kind or first.rule,
                              "verdict": Verdict.FAIL.value, "counted_bytes": counted_bytes, "queue": None,
                              **detected})
            new_state = State.REJECTED
        else:
            now = utcnow()
            ok = _cas(session, c.submission_id, states=[State.CHECKING], attempt=c.attempt,
                      values={"state": State.QUEUED.value, "queue": Queue.EVAL.value, "queued_at": now,
                              "enqueued_at": None, "stage_failures": 0, "counted_bytes": counted_bytes,
                              **detected})
            new_state = State.QUEUED
        if not ok:
            return None
        _store_rules(session, c, "checks", outcomes)
        _close_attempt(session, c.submission_id, c.attempt, "rejected" if failing else "succeeded")
        _transition_rows(session, c.submission_id, State.CHECKING, new_state, c.attempt, actor,
                         failing[0].message if failing else None,
                         rules={o.rule: o.status for o in outcomes})
    if new_state == State.QUEUED:
        send(settings, c.submission_id, Queue.EVAL.value)
    return new_state


def record_chunk(settings: Settings, c: Claim, rec: Any, chunks_total: int | None) -> bool:
    """Store one per-chunk record as the evaluation runs (fenced; doubles as a heartbeat)."""
    now = utcnow()
    with session_scope(settings) as session:
        values: dict[str, Any] = {"heartbeat_at": now, "chunks_done": int(rec.index) + 1}
        if chunks_total is not None:
            values["chunks_total"] = max(int(chunks_total), int(rec.index) + 1)
        if not _cas(session, c.submission_id, states=[State.EVALUATING], attempt=c.attempt, values=values):
            return False
        exists = session.scalar(select(ChunkRecordRow.id).where(
            ChunkRecordRow.submission_id == c.submission_id, ChunkRecordRow.attempt == c.attempt,
            ChunkRecordRow.chunk_index == int(rec.index)))
        if exists is None:
            session.add(ChunkRecordRow(
                submission_id=c.submission_id, attempt=c.attempt, chunk_index=int(rec.index), windows=int(rec.windows),
                tokens_scored=int(rec.tokens_scored), bytes_scored=int(rec.bytes_scored),
                score_seconds=float(rec.score_seconds), train_seconds=float(rec.train_seconds),
                running_loss=float(rec.running_loss), running_bpb=float(rec.running_bpb), lr=float(getattr(rec, "lr", 0.0))))
    return True


@dataclass(frozen=True)
class Measured:
    mode: str
    val_loss: float
    val_bpb: float
    tokens_scored: int
    bytes_scored: int
    total_targets: int
    elapsed_s: float
    gpu_seconds: float
    device: str
    verifier_version: str
    torch_version: str | None
    config_sha256: str
    max_val_tokens: int | None
    chunks: int
    val_sha256: str | None = None
    val_tokens: int | None = None
    canonical_val_sha256: str | None = None
    coverage: str | None = None     # full | demo | partial | non-canonical (gepa.compliance.rules.coverage)
    family: str | None = None                 # the model family that scored it
    extra: dict[str, Any] | None = None       # the family's own figures (JSON-ready)


def finish_eval(settings: Settings, c: Claim, m: Measured, outcomes: list[RuleOutcome], *,
                verdict: str) -> State | None:
    """Write the result exactly once per (submission, attempt) with the engine's verdict
    (`gepa.compliance.engine.final_verdict`: pass | fail | unverified). Only `pass` is published.

    Returns the new state, or None when this attempt no longer owns the submission (then nothing
    is written: the newer attempt's result is the one that counts)."""
    actor = f"worker:{c.worker}"
    verdict = Verdict(verdict)
    with session_scope(settings) as session:
        ok = _cas(session, c.submission_id, states=[State.EVALUATING], attempt=c.attempt,
                  values={"state": State.SCORED.value, "measured_val_bpb": m.val_bpb, "measured_val_loss": m.val_loss,
                          "verdict": verdict.value, "chunks_done": m.chunks, "chunks_total": m.chunks, "queue": None})
        if not ok:
            return None
        res = Result(submission_id=c.submission_id, attempt=c.attempt, mode=m.mode, val_loss=m.val_loss,
                     val_bpb=m.val_bpb, tokens_scored=m.tokens_scored, bytes_scored=m.bytes_scored,
                     total_targets=m.total_targets, elapsed_s=m.elapsed_s, gpu_seconds=m.gpu_seconds,
                     device=m.device, verifier_version=m.verifier_version, torch_version=m.torch_version,
                     config_sha256=m.config_sha256, max_val_tokens=m.max_val_tokens,
                     val_sha256=m.val_sha256, val_tokens=m.val_tokens, canonical_val_sha256=m.canonical_val_sha256,
                     canonical_bytes=m.bytes_scored if m.coverage == "full" else None, coverage=m.coverage,
                     family=m.family, extra=json.dumps(m.extra, sort_keys=True, default=str) if m.extra else None)
        session.add(res)
        session.flush()
        session.execute(update(Submission).where(Submission.id == c.submission_id).values(result_id=res.id))
        _store_rules(session, c, "score", outcomes)
        _close_attempt(session, c.submission_id, c.attempt, "succeeded", device=m.device)
        _transition_rows(session, c.submission_id, State.EVALUATING, State.SCORED, c.attempt, actor,
                         None, val_bpb=m.val_bpb, verdict=verdict.value)
        new_state = State.SCORED
        if verdict == Verdict.PASS and settings.auto_publish:
            session.execute(update(Submission).where(Submission.id == c.submission_id)
                            .values(state=State.PUBLISHED.value, updated_at=utcnow()))
            _transition_rows(session, c.submission_id, State.SCORED, State.PUBLISHED, c.attempt,
                             "system:auto-publish", "verdict pass")
            new_state = State.PUBLISHED
    return new_state


def reject(settings: Settings, c: Claim, *, kind: str, reason: str) -> bool:
    """The submission is at fault: terminal, with a reason the submitter can act on."""
    run_state = RUN_STATE[c.stage]
    with session_scope(settings) as session:
        if not _cas(session, c.submission_id, states=[run_state], attempt=c.attempt,
                    values={"state": State.REJECTED.value, "reason": reason[:4000], "reason_kind": kind,
                            "verdict": Verdict.FAIL.value, "queue": None}):
            return False
        _close_attempt(session, c.submission_id, c.attempt, "rejected", reason)
        _transition_rows(session, c.submission_id, run_state, State.REJECTED, c.attempt, f"worker:{c.worker}",
                         reason, kind=kind)
    return True


def platform_fault(settings: Settings, c: Claim, error: str) -> State | None:
    """The platform failed this attempt: queue the stage again, or fail after `max_attempts`."""
    run_state = RUN_STATE[c.stage]
    actor = f"worker:{c.worker}"
    with session_scope(settings) as session:
        sub = session.get(Submission, c.submission_id)
        if sub is None or sub.attempt != c.attempt or sub.state != run_state.value:
            return None
        failures = sub.stage_failures + 1
        if failures >= settings.max_attempts:
            values = {"state": State.FAILED.value, "reason": f"platform error after {failures} attempts: {error}"[:4000],
                      "reason_kind": "platform-error", "stage_failures": failures, "queue": None}
            new_state = State.FAILED
        else:
            values = {"state": State.QUEUED.value, "queued_at": utcnow(), "enqueued_at": None,
                      "stage_failures": failures}
            new_state = State.QUEUED
        if not _cas(session, c.submission_id, states=[run_state], attempt=c.attempt, values=values):
            return None
        _close_attempt(session, c.submission_id, c.attempt, "error", error)
        _transition_rows(session, c.submission_id, run_state, new_state, c.attempt, actor, error[:500],
                         failures=failures)
    if new_state == State.QUEUED:
        send(settings, c.submission_id, c.stage, countdown=min(30.0, 2.0 ** failures))
    return new_state


def send(settings: Settings, submission_id: str, queue: str, *, countdown: float | None = None) -> bool:
    """Enqueue after commit and remember when, so the reaper knows the message went out."""
    ok = task_queue.enqueue(settings, queue, submission_id, countdown=countdown)
    if ok:
        try:
            with session_scope(settings) as session:
                session.execute(update(Submission).where(Submission.id == submission_id,
                                                         Submission.state == State.QUEUED.value)
                                .values(enqueued_at=utcnow()))
        except Exception as exc:  # noqa: BLE001 - the message is out; the timestamp is only a hint
            log.warning("could not record enqueue time for %s: %s", submission_id, exc)
    return ok


# -- reaper ------------------------------------------------------------------------------------


def reap(settings: Settings, *, actor: str = "system:reaper") -> ReapReport:
    """Re-queue stages whose heartbeat stopped; re-send queued work whose message was lost."""
    report = ReapReport()
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=settings.stale_after_s)
    with session_scope(settings) as session:
        stale = list(session.execute(
            select(Submission.id, Submission.state, Submission.attempt, Submission.stage_failures, Submission.queue)
            .where(Submission.state.in_([State.CHECKING.value, State.EVALUATING.value]),
                   or_(Submission.heartbeat_at.is_(None), Submission.heartbeat_at < cutoff))))
    for sid, state_s, attempt, failures, queue in stale:
        state = State(state_s)
        stage = Queue.CHECKS.value if state == State.CHECKING else Queue.EVAL.value
        with session_scope(settings) as session:
            failures += 1
            if failures >= settings.max_attempts:
                values = {"state": State.FAILED.value, "reason_kind": "worker-lost", "queue": None,
                          "reason": f"the {stage} stage stopped {failures} times without finishing (worker lost)",
                          "stage_failures": failures}
                new_state = State.FAILED
            else:
                values = {"state": State.QUEUED.value, "queue": stage, "queued_at": now, "enqueued_at": None,
                          "stage_failures": failures}
                new_state = State.QUEUED
            guard = or_(Submission.heartbeat_at.is_(None), Submission.heartbeat_at < cutoff)
            if not _cas(session, sid, states=[state], attempt=attempt, values=values, extra=guard):
                continue
            _close_attempt(session, sid, attempt, "abandoned", "heartbeat stopped")
            _transition_rows(session, sid, state, new_state, attempt, actor,
                             f"attempt {attempt} stopped heartbeating", failures=failures)
        (report.failed if new_state == State.FAILED else report.requeued).append(sid)
        if new_state == State.QUEUED:
            send(settings, sid, stage)
    report.resent = _resend_lost(settings, now, actor)
    try:
        report.swept = sweep_orphans(settings, actor=actor)
    except OSError as exc:  # a storage hiccup must not stop the reaper's real work
        log.warning("orphan sweep failed: %s", exc)
    return report


def sweep_orphans(settings: Settings, *, actor: str = "system:reaper") -> list[str]:
    """Delete files no submission will ever reference: temp files of uploads whose process died
    mid-stream, and stored blobs without a `blobs` row (the process died between storing a file and
    committing its submission). Only files untouched for `orphan_after_s` are candidates, so an
    upload in progress is never swept."""
    store = BlobStore(settings.blob_dir)
    cutoff = time.time() - settings.orphan_after_s
    removed: list[str] = []

    def old(p: Any) -> bool:
        try:
            return bool(p.stat().st_mtime < cutoff)
        except FileNotFoundError:
            return False

    for p in store.temp_files():
        if old(p):
            p.unlink(missing_ok=True)
            removed.append(f"tmp/{p.name}")
    candidates = [p.name for p in store.blob_files() if old(p)]
    # Under the store's exclusive lock, and only what no committed row references (api.core.storage).
    removed += store.remove_unreferenced(candidates, functools.partial(referenced_blobs, settings))
    if removed:
        log.info("swept %d orphaned upload file(s)", len(removed))
        with session_scope(settings) as session:
            _audit(session, actor=actor, action="storage.swept", files=removed[:100], count=len(removed))
    return removed


def referenced_blobs(settings: Settings, shas: list[str]) -> set[str]:
    """Which of `shas` committed rows reference (a `blobs` row exists only with its submission)."""
    known: set[str] = set()
    with session_scope(settings) as session:
        for i in range(0, len(shas), 500):
            known |= set(session.scalars(select(Blob.sha256).where(Blob.sha256.in_(shas[i:i + 500]))))
    return known


def _resend_lost(settings: Settings, now: dt.datetime, actor: str) -> list[str]:
    old = now - dt.timedelta(seconds=settings.requeue_after_s)
    resent: list[str] = []
    # Rows stuck in `received` (the API died between commit and enqueue) move to the queue.
    with session_scope(settings) as session:
        stuck = list(session.scalars(select(Submission).where(Submission.state == State.RECEIVED.value,
                                                              Submission.created_at < old)))
        for sub in stuck:
            transition(session, sub, State.QUEUED, actor=actor, reason="never queued", queue=Queue.CHECKS.value)
    depths = broker_message_counts(settings)
    for q in (Queue.CHECKS.value, Queue.EVAL.value):
        with session_scope(settings) as session:
            waiting = session.scalar(select(func.count()).select_from(Submission).where(
                Submission.state == State.QUEUED.value, Submission.queue == q)) or 0
            in_broker = depths.get(q)
            missing = waiting if in_broker is None else waiting - in_broker
            if missing <= 0:
                continue
            ids = list(session.scalars(
                select(Submission.id).where(
                    Submission.state == State.QUEUED.value, Submission.queue == q,
                    or_(and_(Submission.enqueued_at.is_(None), Submission.queued_at < old),
                        Submission.enqueued_at < old))
                .order_by(Submission.queued_at).limit(missing)))
        for sid in ids:
            if send(settings, sid, q):
                resent.append(sid)
                with session_scope(settings) as session:
                    _audit(session, actor=actor, action="task.resent", submission_id=sid, queue=q)
    return resent


def broker_message_counts(settings: Settings) -> dict[str, int]:
    """Messages waiting per queue, from the broker itself (works for Redis and the memory broker)."""
    counts: dict[str, int] = {}
    try:
        app = task_queue.celery_app(settings)
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            for q in (Queue.CHECKS.value, Queue.EVAL.value):
                # A non-passive declare is harmless (workers declare the same queues) and, unlike
                # a passive one, does not error on a queue nobody has used yet.
                _, count, _ = channel.queue_declare(queue=q, durable=True, auto_delete=False)
                counts[q] = int(count)
    except Exception as exc:  # noqa: BLE001 - broker down: do not resend blindly
        log.warning("reaper could not read broker queue depths: %s", exc)
        return {Queue.CHECKS.value: 1 << 30, Queue.EVAL.value: 1 << 30}
    return counts
