"""Claiming queue items: a reviewer claims a submission for themselves, or assigns it to another
reviewer (or admin); either may release it. Plain functions over the caller's session (the caller
commits), like `api.core.reviewer`: each checks who acts and on what, writes the `review_claims` row,
and one `audit_log` row (`review.claim`, `review.assign`, `review.release`) with before/after.

Claims are internal bookkeeping: they are not reviewer notes and never appear on public pages.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core.auth import Principal
from api.core.db import utcnow
from api.core.models import AuditLog, ReviewClaim, Role, User
from api.core.reviewer import Outcome, ReviewError, _load, _reason, _require_reviewer

REVIEW_ROLES = (Role.REVIEWER.value, Role.ADMIN.value)


def reviewers(session: Session) -> list[User]:
    """Users who can hold a claim: reviewers and admins who are not disabled, by name."""
    return list(session.scalars(select(User).where(User.role.in_(REVIEW_ROLES), User.disabled_at.is_(None))
                                .order_by(User.name)))


def holder(session: Session, submission_id: str) -> User | None:
    claim = session.get(ReviewClaim, submission_id)
    return session.get(User, claim.user_id) if claim is not None else None


def holders(session: Session, submission_ids: list[str]) -> dict[str, str]:
    """submission id → the name of the reviewer holding it, for the ids that are claimed."""
    if not submission_ids:
        return {}
    rows = session.execute(select(ReviewClaim.submission_id, User.name).join(User, User.id == ReviewClaim.user_id)
                           .where(ReviewClaim.submission_id.in_(submission_ids)))
    return {sid: name for sid, name in rows}


def _audit(session: Session, who: Principal, sub_id: str, attempt: int, action: str, **details: Any) -> None:
    session.add(AuditLog(actor=who.actor, user_id=who.user_id, action=f"review.{action}", submission_id=sub_id,
                         attempt=attempt, details=json.dumps(details, default=str)))


def _set(session: Session, who: Principal, submission_id: str, assignee: User, action: str,
         reason: str | None) -> Outcome:
    sub = _load(session, submission_id)
    claim = session.get(ReviewClaim, sub.id)
    before = session.get(User, claim.user_id).name if claim is not None else None  # type: ignore[union-attr]
    if claim is not None and claim.user_id == assignee.id:
        raise ReviewError(f"already claimed by {assignee.name}")
    if action == "claim" and claim is not None:
        raise ReviewError(f"already claimed by {before}; assign it to yourself to take it over")
    if claim is None:
        claim = ReviewClaim(submission_id=sub.id, user_id=assignee.id)
        session.add(claim)
    claim.user_id = assignee.id
    claim.assigned_by = None if assignee.id == who.user_id else who.user_id
    claim.claimed_at = utcnow()
    _audit(session, who, sub.id, sub.attempt, action, reason=reason, before={"claimed_by": before},
           after={"claimed_by": assignee.name})
    verb = "claimed by you" if assignee.id == who.user_id else f"assigned to {assignee.name}"
    return Outcome(action, sub.id, verb)


def claim(session: Session, who: Principal, submission_id: str, reason: str | None = None) -> Outcome:
    """Take an unclaimed item for yourself (a claimed one is taken over with `assign`)."""
    _require_reviewer(who)
    me = session.get(User, who.user_id)
    if me is None:
        raise ReviewError("your user no longer exists", 403)
    return _set(session, who, submission_id, me, "claim", _reason(reason, required=False))


def assign(session: Session, who: Principal, submission_id: str, assignee_name: str,
           reason: str | None = None) -> Outcome:
    """Give an item to a reviewer or admin by user name (yourself included, to take one over)."""
    _require_reviewer(who)
    name = (assignee_name or "").strip()
    if not name:
        raise ReviewError("say which reviewer to assign it to", 400)
    user = session.scalar(select(User).where(User.name == name))
    if user is None or user.disabled_at is not None:
        raise ReviewError(f"no active user {name!r}", 400)
    if user.role not in REVIEW_ROLES:
        raise ReviewError(f"{name} is a {user.role}; only reviewers and admins can be assigned", 400)
    return _set(session, who, submission_id, user, "assign", _reason(reason, required=False))


def release(session: Session, who: Principal, submission_id: str, reason: str | None = None) -> Outcome:
    """Drop the claim, whoever holds it (the audit row names both)."""
    _require_reviewer(who)
    sub = _load(session, submission_id)
    claim = session.get(ReviewClaim, sub.id)
    if claim is None:
        raise ReviewError("nobody has claimed this submission")
    before = session.get(User, claim.user_id)
    session.delete(claim)
    _audit(session, who, sub.id, sub.attempt, "release", reason=_reason(reason, required=False),
           before={"claimed_by": before.name if before else None}, after={"claimed_by": None})
    return Outcome("release", sub.id, "released")
