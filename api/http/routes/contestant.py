"""A submitter's own actions over REST: withdraw and re-run (rules in `api.core.contestant`).

    POST /api/v1/submissions/{id}/withdraw   {"reason": "..."} optional
    POST /api/v1/submissions/{id}/rerun      {"reason": "..."} optional

Both answer the submission's new state, or a problem+json error: 403 for someone else's
submission, 404 for an unknown id, 409 when the state does not allow the action (the detail says
why), 429 when a re-run would exceed the daily quota or the cap on work in progress.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api.core import contestant, quota
from api.core.auth import Principal
from api.core.models import State, Submission
from api.core.reviewer import MAX_REASON, Outcome, ReviewError, after_commit
from api.core.settings import Settings
from api.http.deps import PrincipalDep, SessionDep, SettingsDep, StrictQuery
from api.http.problems import Problem
from api.http.schemas import Quota

router = APIRouter(prefix="/api/v1", tags=["submissions"], dependencies=[StrictQuery])


class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=MAX_REASON, description="why (kept in the audit log)")


class ActionLinks(BaseModel):
    self: str
    chunks: str


class ActionResult(BaseModel):
    id: str
    action: Literal["withdraw", "rerun"]
    state: State = Field(description="the submission's state after the action")
    message: str
    quota: Quota = Field(description="the caller's daily quota after the action (as GET /api/v1/quota)")
    links: ActionLinks


_KIND = {400: "invalid-request", 403: "forbidden", 404: "not-found", 409: "conflict"}
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": _PROBLEM} for status, text in (
        (400, "malformed request"), (401, "no or unknown bearer token"),
        (403, "the submission belongs to someone else"), (404, "no such submission"),
        (409, "the submission's state does not allow this (the detail says why)"),
        (422, "invalid body or parameters"), (429, "daily quota or in-progress cap (re-run)"))}
_SECURED = {"security": [{"bearer": []}]}
SubmissionId = Path(max_length=36, description="the submission id")


def _act(session: Session, settings: Settings, principal: Principal, action: str, submission_id: str,
         reason: str | None) -> ActionResult:
    try:
        if action == "withdraw":
            outcome: Outcome = contestant.withdraw(session, principal, submission_id, reason)
        else:
            outcome = contestant.rerun(session, settings, principal, submission_id, reason)
        session.commit()
    except ReviewError as exc:
        session.rollback()
        raise Problem(_KIND.get(exc.status, "conflict"), exc.message, status=exc.status) from None
    except quota.LimitExceeded:
        session.rollback()
        raise  # the app's handler answers it as the 429 problem, with Retry-After and X-Quota-*
    after_commit(settings, outcome)
    state = session.get(Submission, submission_id).state  # type: ignore[union-attr]
    base = f"/api/v1/submissions/{submission_id}"
    return ActionResult(id=submission_id, action=action, state=state, message=outcome.message,
                        quota=quota.status(session, settings, principal.user_id).to_dict(),
                        links=ActionLinks(self=base, chunks=f"{base}/chunks"))


@router.post("/submissions/{submission_id}/withdraw", response_model=ActionResult, responses=_ERRORS,
             openapi_extra=_SECURED)
def withdraw_submission(principal: PrincipalDep, session: SessionDep, settings: SettingsDep,
                        submission_id: str = SubmissionId, body: ActionRequest | None = Body(None)) -> ActionResult:
    """Withdraw your submission before publication; a running evaluation stops and is never published."""
    return _act(session, settings, principal, "withdraw", submission_id, body.reason if body else None)


@router.post("/submissions/{submission_id}/rerun", response_model=ActionResult, responses=_ERRORS,
             openapi_extra=_SECURED)
def rerun_submission(principal: PrincipalDep, session: SessionDep, settings: SettingsDep,
                     submission_id: str = SubmissionId, body: ActionRequest | None = Body(None)) -> ActionResult:
    """Run your submission again after a platform failure (counts against the daily quota)."""
    return _act(session, settings, principal, "rerun", submission_id, body.reason if body else None)
