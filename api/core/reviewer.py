"""Reviewer actions as plain functions: publish, flag, restore, disqualify, override a rule
result, request a re-run, and leave a note.

Each function takes the caller's session (the caller commits), the acting `Principal` and the
submission id; it checks the action makes sense in the submission's current state, applies it,
and writes one `review_actions` row (what the public entry page shows as reviewer notes) and one
`audit_log` row with the before/after values and the reason. A refused action raises
`ReviewError` with a one-line message and an HTTP status, and writes nothing.

Only `request_rerun` has an effect outside the database: the caller must send the task after
commit (`after_commit(settings, outcome)`), the same enqueue-after-commit rule the pipeline keeps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core import lifecycle
from api.core.auth import Principal
from api.core.crud import current_rules
from api.core.db import utcnow
from api.core.models import AuditLog, Coverage, Flag, Queue, Result, ReviewAction, RuleResult, State, Submission, Verdict
from gepa.compliance.engine import REQUIRED_FOR_PASS, final_verdict
from api.core.settings import Settings

RULE_STATUSES = ("pass", "warn", "fail", "skip")
MAX_REASON = 2000
ACTIONS = ("publish", "flag", "restore", "disqualify", "override", "rerun", "note")


class ReviewError(ValueError):
    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Outcome:
    action: str
    submission_id: str
    message: str
    send_queue: str | None = None  # set by request_rerun: enqueue this after commit
    details: dict[str, Any] = field(default_factory=dict)


def _load(session: Session, submission_id: str) -> Submission:
    sub = session.get(Submission, submission_id) if len(submission_id) <= 36 else None
    if sub is None:
        raise ReviewError(f"no submission {submission_id}", 404)
    return sub


def _reason(reason: str | None, *, required: bool) -> str | None:
    text = (reason or "").strip()
    if required and not text:
        raise ReviewError("give a reason: it is recorded and shown on the public entry page", 400)
    if len(text) > MAX_REASON:
        raise ReviewError(f"the reason is longer than {MAX_REASON} characters", 400)
    return text or None


def _require_reviewer(who: Principal) -> None:
    if not who.can_review:
        raise ReviewError("this needs the reviewer or admin role", 403)


def _record(session: Session, who: Principal, sub: Submission, action: str, reason: str | None,
            **details: Any) -> None:
    """The review_actions row (public notes) and the audit_log row (everything), together."""
    payload = json.dumps(details, default=str) if details else None
    session.add(ReviewAction(submission_id=sub.id, user_id=who.user_id, action=action, reason=reason,
                             payload=payload, at=utcnow()))
    session.add(AuditLog(actor=who.actor, user_id=who.user_id, action=f"review.{action}", submission_id=sub.id,
                         attempt=sub.attempt, details=json.dumps({"reason": reason, **details}, default=str)))


# Measured facts, not judgements: a reviewer cannot turn a demo or unreproduced result into a pass.
NOT_OVERRIDABLE = REQUIRED_FOR_PASS


def _effective_verdict(session: Session, sub: Submission) -> str:
    """The engine's verdict over the effective (overridden) statuses of the current rules."""
    rules = current_rules(session, sub.id)
    effective = [SimpleNamespace(rule=r.rule, status=r.override_status or r.status) for r in rules]
    return final_verdict(effective)


def publish(session: Session, who: Principal, submission_id: str, reason: str | None = None) -> Outcome:
    """scored → published: the result goes on the leaderboard (passing verdict, no open flag)."""
    _require_reviewer(who)
    sub = _load(session, submission_id)
    reason = _reason(reason, required=False)
    if sub.state != State.SCORED.value:
        raise ReviewError(f"only a scored submission can be published; this one is {sub.state}")
    if sub.verdict != Verdict.PASS.value:
        raise ReviewError("the verdict is not pass; override the failing rule results first (with a reason)")
    res = session.get(Result, sub.result_id) if sub.result_id else None
    if res is None or res.coverage != Coverage.FULL.value or res.max_val_tokens is not None:
        raise ReviewError("the result was not computed on the full canonical validation set; it cannot be published")
    if sub.flagged or sub.disqualified:
        raise ReviewError("the submission is flagged or disqualified; restore it first")
    lifecycle.transition(session, sub, State.PUBLISHED, actor=who.actor, reason=reason or "published by a reviewer")
    _record(session, who, sub, "publish", reason, before={"state": State.SCORED.value},
            after={"state": State.PUBLISHED.value})
    return Outcome("publish", sub.id, "published: the result is on the leaderboard")


def flag(session: Session, who: Principal, submission_id: str, reason: str | None) -> Outcome:
    """Flag with a public reason: the entry leaves the leaderboard until restored."""
    _require_reviewer(who)
    sub = _load(session, submission_id)
    text = _reason(reason, required=True)
    before = sub.flagged
    sub.flagged = True
    sub.updated_at = utcnow()
    session.add(Flag(submission_id=sub.id, raised_by=who.user_id, reason=text or "", public=True, status="open"))
    _record(session, who, sub, "flag", text, before={"flagged": before}, after={"flagged": True})
    return Outcome("flag", sub.id, "flagged: the entry is off the leaderboard and shows the reason publicly")


def restore(session: Session, who: Principal, submission_id: str, reason: str | None) -> Outcome:
    """Clear a flag and/or disqualification (open flags are resolved, not deleted)."""
    _require_reviewer(who)
    sub = _load(session, submission_id)
    text = _reason(reason, required=True)
    if not (sub.flagged or sub.disqualified):
        raise ReviewError("the submission is neither flagged nor disqualified")
    before = {"flagged": sub.flagged, "disqualified": sub.disqualified}
    now = utcnow()
    for f in session.scalars(select(Flag).where(Flag.submission_id == sub.id, Flag.status == "open")):
        f.status, f.resolved_at, f.resolved_by = "resolved", now, who.user_id
    sub.flagged = sub.disqualified = False
    sub.updated_at = now
    _record(session, who, sub, "restore", text, before=before, after={"flagged": False, "disqualified": False})
    return Outcome("restore", sub.id, "restored")


def disqualify(session: Session, who: Principal, submission_id: str, reason: str | None) -> Outcome:
    _require_reviewer(who)
    sub = _load(session, submission_id)
    text = _reason(reason, required=True)
    if sub.disqualified:
        raise ReviewError("the submission is already disqualified")
    sub.disqualified = True
    sub.updated_at = utcnow()
    _record(session, who, sub, "disqualify", text, before={"disqualified": False}, after={"disqualified": True})
    return Outcome("disqualify", sub.id, "disqualified: the entry is off the leaderboard")


def override_rule(session: Session, who: Principal, submission_id: str, rule_result_id: int, status: str,
                  reason: str | None) -> Outcome:
    """Replace one current rule result's status (the original stays) and re-derive the verdict.

    For a scored or published submission the verdict follows the effective statuses: a new
    failure moves a published result back to scored (off the leaderboard); clearing the last
    failure leaves it scored with a pass verdict, ready for `publish`."""
    _require_reviewer(who)
    sub = _load(session, submission_id)
    text = _reason(reason, required=True)
    status = (status or "").strip().lower()
    if status not in RULE_STATUSES:
        raise ReviewError(f"status must be one of {', '.join(RULE_STATUSES)}", 400)
    row = session.get(RuleResult, rule_result_id)
    if row is None or row.submission_id != sub.id:
        raise ReviewError(f"no rule result {rule_result_id} on this submission", 404)
    if row not in current_rules(session, sub.id):
        raise ReviewError("that rule result belongs to an earlier attempt; override the current one", 409)
    if row.rule in NOT_OVERRIDABLE:
        raise ReviewError(f"{row.rule} records what was measured; it cannot be overridden (re-run the evaluation instead)",
                          409)
    before = {"status": row.status, "override_status": row.override_status, "verdict": sub.verdict,
              "state": sub.state}
    if status == row.status:
        row.override_status = row.override_reason = row.override_by = row.override_at = None  # back to original
    else:
        row.override_status, row.override_reason = status, text
        row.override_by, row.override_at = who.user_id, utcnow()
    session.flush()
    if sub.state in (State.SCORED.value, State.PUBLISHED.value):
        sub.verdict = _effective_verdict(session, sub)
        if sub.state == State.PUBLISHED.value and sub.verdict != Verdict.PASS.value:
            lifecycle.transition(session, sub, State.SCORED, actor=who.actor,
                                 reason=f"rule {row.rule} overridden to {status}: {text}")
    sub.updated_at = utcnow()
    after = {"status": row.status, "override_status": row.override_status, "verdict": sub.verdict,
             "state": sub.state}
    _record(session, who, sub, "override", text, rule=row.rule, rule_result_id=row.id, stage=row.stage,
            before=before, after=after)
    return Outcome("override", sub.id, f"rule {row.rule} is now {row.override_status or row.status}")


RERUN_FROM = frozenset({State.SCORED, State.PUBLISHED, State.REJECTED, State.FAILED})


def request_rerun(session: Session, who: Principal, submission_id: str, reason: str | None) -> Outcome:
    """Queue the whole pipeline again (checks, then evaluation) as a new attempt.

    The earlier attempts' chunks, results and rule results stay for the record; the new attempt's
    replace them on the pages. The caller sends the task after commit (`after_commit`)."""
    _require_reviewer(who)
    sub = _load(session, submission_id)
    text = _reason(reason, required=True)
    state = State(sub.state)
    if state not in RERUN_FROM:
        raise ReviewError(f"a {sub.state} submission is already in the pipeline; wait for it to finish")
    before = {"state": sub.state, "verdict": sub.verdict}
    lifecycle.transition(session, sub, State.QUEUED, actor=who.actor, reason=f"re-run requested: {text}",
                         queue=Queue.CHECKS.value)
    sub.verdict = Verdict.PENDING.value
    sub.reason = sub.reason_kind = None
    _record(session, who, sub, "rerun", text, before=before, after={"state": sub.state, "verdict": sub.verdict})
    return Outcome("rerun", sub.id, "queued for a re-run", send_queue=Queue.CHECKS.value)


def note(session: Session, who: Principal, submission_id: str, reason: str | None) -> Outcome:
    """A reviewer note without any state change (shown publicly with the other notes)."""
    _require_reviewer(who)
    sub = _load(session, submission_id)
    text = _reason(reason, required=True)
    _record(session, who, sub, "note", text)
    return Outcome("note", sub.id, "note added")


def after_commit(settings: Settings, outcome: Outcome) -> None:
    """Side effects that must follow the commit (enqueue for a re-run)."""
    if outcome.send_queue:
        lifecycle.send(settings, outcome.submission_id, outcome.send_queue)
