"""A submitter's own actions on their submissions, as plain functions: withdraw and re-run.

The rules (what a challenge maintainer expects; README "Contestant page"):

- Only the submitter acts on their submission. Reviewers have their own actions (`api.core.reviewer`:
  flag, disqualify, request a re-run); a reviewer's token gets no more here than anyone else's.
- **withdraw** is allowed until publication: received, queued, checking, evaluating or scored.
  The submission becomes `withdrawn`, which is final. A check or evaluation in progress loses its
  claim at its next heartbeat or chunk (every worker write is fenced on the state,
  `api.core.lifecycle`), so its result is never stored, ranked or published. A published entry is not
  withdrawn by its author: it is part of the leaderboard's history (a reviewer can flag or
  disqualify it). Rejected and failed submissions are already off the board. The daily quota is
  not refunded (otherwise withdraw + upload would bypass it); the same files may be uploaded again
  as a new submission, because the withdrawn row gives up its duplicate-detection key.
- **re-run** is allowed only after a platform failure (`failed`): the whole pipeline runs again as
  a new attempt, charged to the daily quota like an upload (`api.core.quota` counts it on the day it
  was asked for) and within the cap on work in progress. A rejected submission is at fault and is
  fixed by a new upload; a scored one was evaluated, and re-running it is a reviewer's call.

Each action writes its state transition and one `audit_log` row (`contestant.withdraw`,
`contestant.rerun`) with the before/after values and the optional reason. A refused action raises
`ReviewError` (one-line message, HTTP status) or, for the quota, `quota.LimitExceeded` (the HTTP
layer's 429), and writes nothing. The caller commits, then calls `reviewer.after_commit(settings, outcome)` (a re-run is
enqueued only after its commit, as everywhere in the pipeline).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.core import lifecycle, quota
from api.core.auth import Principal
from api.core.db import utcnow
from api.core.intake import sha256_text
from api.core.models import Attempt, AuditLog, Queue, State, Submission, Verdict
from api.core.reviewer import MAX_REASON, Outcome, ReviewError
from api.core.settings import Settings

WITHDRAW_ACTION = "contestant.withdraw"
RERUN_ACTION = quota.OWNER_RERUN_ACTION
WITHDRAW_FROM = frozenset({State.RECEIVED, State.QUEUED, State.CHECKING, State.EVALUATING, State.SCORED})
RERUN_FROM = frozenset({State.FAILED})
RUNNING = frozenset({State.CHECKING, State.EVALUATING})  # a worker holds a claim on the row

_NO_WITHDRAW = {
    State.PUBLISHED: "a published entry cannot be withdrawn by its submitter: it is part of the leaderboard's "
                     "history; ask a reviewer to flag it",
    State.REJECTED: "a rejected submission is already off the leaderboard; there is nothing to withdraw",
    State.FAILED: "a failed submission is already off the leaderboard; re-run it or leave it",
    State.WITHDRAWN: "the submission is already withdrawn",
}
_NO_RERUN = {
    State.REJECTED: "a rejected submission is not re-run: fix what its reason names and upload again",
    State.WITHDRAWN: "a withdrawn submission is not re-run; upload the files again for a new submission",
    State.SCORED: "only a submission the platform failed can be re-run by its submitter; this one was scored "
                  "(a reviewer can request a re-run)",
    State.PUBLISHED: "only a submission the platform failed can be re-run by its submitter; this one is published "
                     "(a reviewer can request a re-run)",
}


def _own(session: Session, who: Principal, submission_id: str) -> Submission:
    """The caller's submission, locked for the transaction (PostgreSQL): a worker's fenced write
    waits for this decision and then finds the state it expected gone."""
    if len(submission_id) > 36:
        raise ReviewError(f"no submission {submission_id[:40]}", 404)
    q = select(Submission).where(Submission.id == submission_id)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    sub = session.scalar(q)
    if sub is None:
        raise ReviewError(f"no submission {submission_id}", 404)
    if sub.submitter_id != who.user_id:
        raise ReviewError("only its submitter can withdraw or re-run a submission", 403)
    return sub


def _reason(reason: str | None) -> str | None:
    text = (reason or "").strip()
    if len(text) > MAX_REASON:
        raise ReviewError(f"the reason is longer than {MAX_REASON} characters", 400)
    return text or None


def _audit(session: Session, who: Principal, sub: Submission, action: str, reason: str | None,
           **details: Any) -> None:
    session.add(AuditLog(actor=who.actor, user_id=who.user_id, action=action, submission_id=sub.id,
                         attempt=sub.attempt, details=json.dumps({"reason": reason, **details}, default=str)))


def can_withdraw(sub: Submission) -> bool:
    return State(sub.state) in WITHDRAW_FROM


def can_rerun(sub: Submission) -> bool:
    return State(sub.state) in RERUN_FROM


def withdraw(session: Session, who: Principal, submission_id: str, reason: str | None = None) -> Outcome:
    """Take a submission back before publication (see the module docstring for the rules)."""
    sub = _own(session, who, submission_id)
    text = _reason(reason)
    state = State(sub.state)
    if state not in WITHDRAW_FROM:
        raise ReviewError(_NO_WITHDRAW.get(state, f"a {state.value} submission cannot be withdrawn"))
    before = {"state": sub.state, "verdict": sub.verdict}
    lifecycle.transition(session, sub, State.WITHDRAWN, actor=who.actor,
                         reason=f"withdrawn by its submitter{': ' + text if text else ''}")
    if state in RUNNING:
        session.execute(update(Attempt).where(Attempt.submission_id == sub.id, Attempt.number == sub.attempt,
                                              Attempt.outcome == "running")
                        .values(outcome="withdrawn", finished_at=utcnow(), error="withdrawn by its submitter"))
    sub.queue = None
    # Uploading the same files again makes a new submission instead of finding this one.
    sub.dedupe_key = sha256_text(f"withdrawn:{sub.id}")
    _audit(session, who, sub, WITHDRAW_ACTION, text, before=before, after={"state": sub.state})
    return Outcome("withdraw", sub.id, "withdrawn: it will not be evaluated further or published")


def rerun(session: Session, settings: Settings, who: Principal, submission_id: str,
          reason: str | None = None) -> Outcome:
    """Queue a failed submission's whole pipeline again, charged to the daily quota."""
    sub = _own(session, who, submission_id)
    text = _reason(reason)
    state = State(sub.state)
    if state not in RERUN_FROM:
        raise ReviewError(_NO_RERUN.get(state, f"a {state.value} submission is still in the pipeline; "
                                               "wait for it to finish"))
    # The user's row is locked until commit, so two re-runs cannot both take the last slot.
    quota.enforce(quota.status(session, settings, who.user_id, lock=True))
    before = {"state": sub.state, "verdict": sub.verdict, "reason": sub.reason}
    lifecycle.transition(session, sub, State.QUEUED, actor=who.actor,
                         reason=f"re-run requested by its submitter{': ' + text if text else ''}",
                         queue=Queue.CHECKS.value)
    sub.verdict = Verdict.PENDING.value
    sub.reason = sub.reason_kind = None
    _audit(session, who, sub, RERUN_ACTION, text, before=before, after={"state": sub.state, "verdict": sub.verdict})
    return Outcome("rerun", sub.id, "queued again: the checks and the evaluation run as a new attempt",
                   send_queue=Queue.CHECKS.value)
