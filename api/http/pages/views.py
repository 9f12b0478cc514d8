"""View models shared by the public and reviewer pages: rule results with evidence, reviewer
notes, and the per-chunk rows of the attempt that counts. Pure reads; no HTTP here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.core.crud import current_rules
from api.core.models import (
    ChunkRecordRow,
    Flag,
    Result,
    ReviewAction,
    RuleResult,
    State,
    StateTransition,
    Submission,
    SubmissionFile,
    User,
    Verdict,
)

STATUS_ORDER = {"fail": 0, "warn": 1, "pass": 2, "skip": 3}
_EVIDENCE_KEYS = ("message", "file", "line", "value", "limit")


@dataclass
class EvidenceItem:
    message: str | None = None
    file: str | None = None
    line: int | None = None
    value: Any = None
    limit: Any = None
    data: dict[str, Any] = field(default_factory=dict)  # anything else, shown as key: value
    link: str | None = None  # reviewer pages: file:line link into the file view


@dataclass
class RuleView:
    id: int | None
    rule: str
    title: str | None
    stage: str
    status: str                 # effective (after an override)
    original_status: str
    message: str | None
    evidence: list[EvidenceItem]
    override_reason: str | None = None
    override_by: str | None = None
    override_at: Any = None


def _scalar(v: Any) -> Any:
    return v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v, default=str)[:500]


def evidence_items(raw: Any) -> list[EvidenceItem]:
    """Normalise the shapes rules store as evidence: a list of {message, file, line, ...}, one such
    dict, or a free-form dict (sizes report, reproduction numbers)."""
    if raw is None or raw == "" or raw == []:
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return [EvidenceItem(message=raw)]
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for it in items[:200]:
        if not isinstance(it, dict):
            out.append(EvidenceItem(message=str(it)))
            continue
        line = it.get("line")
        ev = EvidenceItem(message=it.get("message") if isinstance(it.get("message"), str) else None,
                          file=it.get("file") if isinstance(it.get("file"), str) else None,
                          line=line if isinstance(line, int) and not isinstance(line, bool) else None,
                          value=_scalar(it.get("value")), limit=_scalar(it.get("limit")),
                          data={k: _scalar(v) for k, v in it.items() if k not in _EVIDENCE_KEYS})
        out.append(ev)
    return out


def rule_views(session: Session, rows: list[RuleResult]) -> list[RuleView]:
    names = {}
    ids = {r.override_by for r in rows if r.override_by}
    if ids:
        names = dict(session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())
    views = [RuleView(id=r.id, rule=r.rule, title=r.title, stage=r.stage, status=r.override_status or r.status,
                      original_status=r.status, message=r.message, evidence=evidence_items(r.evidence),
                      override_reason=r.override_reason, override_by=names.get(r.override_by),
                      override_at=r.override_at) for r in rows]
    # Failures first, then warnings: what a reviewer must look at comes first.
    views.sort(key=lambda v: (STATUS_ORDER.get(v.status, 9), v.stage, v.rule))
    return views


def record_rule_views(rule_results_json: str | None) -> list[RuleView]:
    """Rule results of an ingested record folder (gepa.compliance `Verdict.to_dict()`)."""
    if not rule_results_json:
        return []
    try:
        data = json.loads(rule_results_json)
    except ValueError:
        return []
    rows = data.get("results", []) if isinstance(data, dict) else []
    views = [RuleView(id=None, rule=str(r.get("rule")), title=r.get("description"), stage="record",
                      status=str(r.get("status")), original_status=str(r.get("status")),
                      message=r.get("summary"), evidence=evidence_items(r.get("evidence")))
             for r in rows if isinstance(r, dict)]
    views.sort(key=lambda v: (STATUS_ORDER.get(v.status, 9), v.rule))
    return views


def current_rule_views(session: Session, sub: Submission) -> list[RuleView]:
    return rule_views(session, current_rules(session, sub.id))


def chunk_rows(session: Session, sub: Submission) -> tuple[int | None, list[ChunkRecordRow]]:
    """The chunks of the attempt that produced the result, else of the newest attempt."""
    attempt = None
    if sub.result_id:
        res = session.get(Result, sub.result_id)
        attempt = res.attempt if res else None
    if attempt is None:
        attempt = session.scalar(select(func.max(ChunkRecordRow.attempt)).where(ChunkRecordRow.submission_id == sub.id))
    if attempt is None:
        return None, []
    rows = list(session.scalars(select(ChunkRecordRow).where(ChunkRecordRow.submission_id == sub.id,
                                                             ChunkRecordRow.attempt == attempt)
                                .order_by(ChunkRecordRow.chunk_index)))
    return attempt, rows


@dataclass
class Note:
    action: str
    reason: str | None
    reviewer: str
    at: Any
    details: dict[str, Any]


def reviewer_notes(session: Session, submission_id: str) -> list[Note]:
    rows = session.execute(select(ReviewAction, User.name).join(User, User.id == ReviewAction.user_id)
                           .where(ReviewAction.submission_id == submission_id)
                           .order_by(ReviewAction.at, ReviewAction.id)).all()
    out = []
    for a, name in rows:
        try:
            details = json.loads(a.payload) if a.payload else {}
        except ValueError:
            details = {}
        out.append(Note(a.action, a.reason, name, a.at, details if isinstance(details, dict) else {}))
    return out


def open_flags(session: Session, submission_id: str, public_only: bool = True) -> list[Flag]:
    q = select(Flag).where(Flag.submission_id == submission_id, Flag.status == "open")
    if public_only:
        q = q.where(Flag.public.is_(True))
    return list(session.scalars(q.order_by(Flag.created_at)))


def ever_published(session: Session, sub: Submission) -> bool:
    """Public pages show a submission once it has been published, and keep showing it (with the
    flag, disqualification or re-run status) afterwards, so reviewer decisions stay visible."""
    if sub.state == State.PUBLISHED.value:
        return True
    return session.scalar(select(StateTransition.id).where(StateTransition.submission_id == sub.id,
                                                           StateTransition.to_state == State.PUBLISHED.value)
                          .limit(1)) is not None


def public_status(sub: Submission) -> tuple[str, str]:
    """(badge class, label) for a submission's standing on the public board."""
    if sub.disqualified:
        return "bad", "disqualified"
    if sub.flagged:
        return "warn", "flagged"
    if sub.state == State.PUBLISHED.value and sub.verdict == Verdict.PASS.value:
        return "good", "verified"
    if sub.state in (State.QUEUED.value, State.CHECKING.value, State.EVALUATING.value):
        return "neutral", "re-run in progress"
    return "neutral", f"not on the leaderboard ({sub.state})"


def files_of(session: Session, sub: Submission) -> list[SubmissionFile]:
    return list(session.scalars(select(SubmissionFile).where(SubmissionFile.submission_id == sub.id)
                                .order_by(SubmissionFile.id)))
