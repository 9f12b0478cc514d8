"""The audit log as a table: filters (actor, action, submission, date range) and numbered pages
over `audit_log`, newest first, with a one-line summary of each row's JSON details (the full
details stay available, collapsed, on the page).

`AuditQuery.parse` refuses bad dates and page numbers with a one-line `ValueError`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from api.core.models import AuditLog
from api.core.review_queue import parse_date

PAGE_SIZE = 50
MAX_VALUE = 200
SUMMARY_CHARS = 140


@dataclass(frozen=True)
class AuditQuery:
    actor: str = ""       # exact, e.g. user:rita
    action: str = ""      # prefix, e.g. review. or review.flag
    submission: str = ""  # an id or its first characters (the queue shows 8)
    since: str = ""       # on or after this UTC date
    until: str = ""       # on or before this UTC date
    before: int = 0       # only entries older than this id (links from before the table had pages)
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> "AuditQuery":
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = str(params.get(f.name) or "").strip()
            if len(raw) > MAX_VALUE:
                raise ValueError(f"{f.name} is longer than {MAX_VALUE} characters")
            if raw:
                values[f.name] = raw
        page = values.pop("page", "1")
        if not page.isdigit() or not 1 <= int(page) <= 1_000_000:
            raise ValueError("page must be a whole number from 1 to 1000000")
        before = values.pop("before", "0")
        if not before.isdigit() or len(before) > 12:
            raise ValueError("before must be an entry number")
        q = cls(**values, before=int(before))
        since, until = parse_date(q.since, "since"), parse_date(q.until, "until")
        if since and until and since > until:
            raise ValueError("since is after until")
        return replace(q, page=int(page))

    def params(self, **override: Any) -> dict[str, str]:
        merged = {**asdict(self), **override}
        return {k: str(v) for k, v in merged.items() if v != getattr(AuditQuery(), k)}


def _select(q: AuditQuery) -> Select[Any]:
    stmt = select(AuditLog)
    if q.actor:
        stmt = stmt.where(AuditLog.actor == q.actor)
    if q.action:
        stmt = stmt.where(AuditLog.action.startswith(q.action, autoescape=True))
    if q.submission:
        stmt = stmt.where(AuditLog.submission_id == q.submission if len(q.submission) >= 36
                          else AuditLog.submission_id.startswith(q.submission, autoescape=True))
    if q.before:
        stmt = stmt.where(AuditLog.id < q.before)
    since, until = parse_date(q.since, "since"), parse_date(q.until, "until")
    if since is not None:
        stmt = stmt.where(AuditLog.at >= dt.datetime.combine(since, dt.time(), dt.timezone.utc))
    if until is not None:
        stmt = stmt.where(AuditLog.at < dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.timezone.utc))
    return stmt


@dataclass(frozen=True)
class AuditRow:
    entry: AuditLog
    summary: str
    details: Any  # parsed JSON (or the raw text when it is not JSON); None when empty


def summarise(details: str | None) -> tuple[str, Any]:
    """(one-line summary, parsed details): the reason when there is one, else the first few keys."""
    if not details:
        return "", None
    try:
        data = json.loads(details)
    except ValueError:
        return details[:SUMMARY_CHARS], details
    if not isinstance(data, dict):
        return json.dumps(data, default=str)[:SUMMARY_CHARS], data
    parts = []
    if data.get("reason"):
        parts.append(str(data["reason"]))
    for key in ("before", "after"):
        if isinstance(data.get(key), dict) and data[key]:
            parts.append(f"{key} " + ", ".join(f"{k}={v}" for k, v in data[key].items()))
    if not parts:
        parts = [f"{k}={json.dumps(v, default=str)}" for k, v in list(data.items())[:4]]
    text = " · ".join(parts)
    return (text[:SUMMARY_CHARS - 1] + "…") if len(text) > SUMMARY_CHARS else text, data


def page(session: Session, q: AuditQuery) -> tuple[list[AuditRow], int]:
    """(this page's rows, total matching) newest first."""
    stmt = _select(q)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    entries = session.scalars(stmt.order_by(AuditLog.id.desc()).offset((q.page - 1) * PAGE_SIZE).limit(PAGE_SIZE))
    return [AuditRow(e, *summarise(e.details)) for e in entries], total


def choices(session: Session) -> dict[str, list[str]]:
    """Known actors and action names, offered as suggestions in the filter form."""
    actors = session.scalars(select(AuditLog.actor).distinct().order_by(AuditLog.actor).limit(300))
    actions = session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action).limit(300))
    return {"actors": list(actors), "actions": list(actions)}
