"""Bulk reviewer actions: one action and one reason applied to several submissions.

Each item goes through exactly the function the single-item form calls (`api.core.reviewer`,
`api.core.review_claims`), so it passes the same checks, and is committed on its own: one refused
item (a publish of a failing verdict, a re-run of a running submission) does not undo or block
the others. The caller gets one result per item, in the order given, and any enqueueing a re-run
needs happens right after that item's commit (`api.core.reviewer.after_commit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy.orm import Session

from api.core import review_claims, reviewer
from api.core.auth import Principal
from api.core.models import Submission
from api.core.settings import Settings

MAX_ITEMS = 200
ACTIONS: dict[str, Callable[..., reviewer.Outcome]] = {
    "publish": reviewer.publish, "flag": reviewer.flag, "rerun": reviewer.request_rerun, "note": reviewer.note,
    "claim": review_claims.claim, "release": review_claims.release,
}
REASON_OPTIONAL = frozenset({"publish", "claim", "release"})


@dataclass(frozen=True)
class ItemResult:
    submission_id: str
    name: str
    ok: bool
    message: str
    status: int = 200


def validate(action: str, ids: list[str], reason: str | None) -> list[str]:
    """The ids to act on (deduplicated, order kept); a `ReviewError` for a request that cannot
    succeed for any item (unknown action, no selection, missing reason)."""
    if action not in ACTIONS:
        raise reviewer.ReviewError(f"choose an action: one of {', '.join(ACTIONS)}", 400)
    if any(len(i) > 64 for i in ids):
        raise reviewer.ReviewError("a selected value is not a submission id", 400)
    unique = list(dict.fromkeys(i.strip() for i in ids if i.strip()))
    if not unique:
        raise reviewer.ReviewError("select at least one submission", 400)
    if len(unique) > MAX_ITEMS:
        raise reviewer.ReviewError(f"select at most {MAX_ITEMS} submissions at once", 400)
    reviewer._reason(reason, required=action not in REASON_OPTIONAL)
    return unique


def apply(session: Session, settings: Settings, who: Principal, action: str, ids: list[str],
          reason: str | None) -> list[ItemResult]:
    """Run `action` on every id, each in its own transaction; refused items are reported, not raised."""
    unique = validate(action, ids, reason)
    fn = ACTIONS[action]
    results = []
    for sid in unique:
        sub = session.get(Submission, sid) if len(sid) <= 36 else None
        name = (sub.name or sub.folder or sub.id) if sub is not None else sid
        try:
            outcome = fn(session, who, sid, reason)
            session.commit()
        except reviewer.ReviewError as exc:
            session.rollback()
            results.append(ItemResult(sid, name, False, exc.message, exc.status))
            continue
        reviewer.after_commit(settings, outcome)
        results.append(ItemResult(sid, name, True, outcome.message))
    return results
