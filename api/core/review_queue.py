"""The reviewer queue as a query: filters, sort order and paging parsed from a query string, and
the rows they select, shared by the queue page and the CSV/JSON export (so an export holds exactly
what the filtered queue shows, in the same order, without the page limit).

`QueueQuery.parse(params)` refuses unknown sort keys, bad dates and over-long values with a
one-line `ValueError`; `QueueQuery.params()` gives back only the non-default values, so links
built from it (sort headers, paging, export) keep the reviewer's view in the URL.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, aliased

from api.core.models import ReviewClaim, State, Submission, User

PAGE_SIZE = 100
EXPORT_MAX_ROWS = 50_000
UNCLAIMED = "(nobody)"  # the claimed-by filter value for items nobody holds (not a valid user name form)
MAX_VALUE = 200

Holder = aliased(User, name="holder")

# Sortable columns: the public key in the URL → the SQL expression it orders by.
SORTS: dict[str, Any] = {
    "created": Submission.created_at,
    "updated": Submission.updated_at,
    "name": func.coalesce(Submission.name, Submission.folder, Submission.id),
    "submitter": User.name,
    "track": Submission.track,
    "family": Submission.family,
    "state": Submission.state,
    "verdict": Submission.verdict,
    "claimed": Submission.claimed_val_bpb,
    "measured": Submission.measured_val_bpb,
    "claimed_by": Holder.name,
}
DIRECTIONS = ("asc", "desc")


def parse_date(value: str, name: str) -> dt.date | None:
    """A query-string date (empty: none); a clear ValueError naming the field otherwise."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} must be a date like 2026-05-01, not {value[:40]!r}") from None


@dataclass(frozen=True)
class QueueQuery:
    track: str = ""
    state: str = ""
    verdict: str = ""
    family: str = ""
    flagged: str = ""      # "" | yes | no
    awaiting: str = ""     # "" | 1
    claimed_by: str = ""   # "" | UNCLAIMED | a user name
    submitter: str = ""    # a user name
    since: str = ""        # created on or after this date (UTC), YYYY-MM-DD
    until: str = ""        # created on or before this date (UTC), YYYY-MM-DD
    sort: str = "created"
    dir: str = "asc"
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> "QueueQuery":
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = params.get(f.name)
            if raw is None or raw == "":
                continue
            raw = str(raw).strip()
            if len(raw) > MAX_VALUE:
                raise ValueError(f"{f.name} is longer than {MAX_VALUE} characters")
            values[f.name] = raw
        q = cls(**{k: v for k, v in values.items() if k != "page"})
        if q.sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {q.sort[:40]!r}")
        if q.dir not in DIRECTIONS:
            raise ValueError("dir must be asc or desc")
        if q.flagged not in ("", "yes", "no"):
            raise ValueError("flagged must be yes or no")
        if q.state and q.state not in {s.value for s in State}:
            raise ValueError(f"state must be one of {', '.join(s.value for s in State)}")
        parse_date(q.since, "since"), parse_date(q.until, "until")
        page = values.get("page", "1")
        if not page.isdigit() or not 1 <= int(page) <= 100_000:
            raise ValueError("page must be a whole number from 1 to 100000")
        return replace(q, page=int(page))

    def params(self, **override: Any) -> dict[str, str]:
        """The non-default values (with `override` applied), for building links."""
        defaults = QueueQuery()
        merged = {**asdict(self), **override}
        return {k: str(v) for k, v in merged.items() if v != getattr(defaults, k)}

    def sorted_by(self, key: str) -> dict[str, str]:
        """Params for a column header: sort by `key`, flipping the direction if it already is."""
        flip = "desc" if self.sort == key and self.dir == "asc" else "asc"
        return self.params(sort=key, dir=flip, page=1)


def base_select(q: QueueQuery) -> Select[Any]:
    """(Submission, submitter name, claim holder name) rows matching the filters, unordered."""
    stmt = (select(Submission, User.name, Holder.name)
            .join(User, User.id == Submission.submitter_id)
            .outerjoin(ReviewClaim, ReviewClaim.submission_id == Submission.id)
            .outerjoin(Holder, Holder.id == ReviewClaim.user_id))
    for col, value in ((Submission.track, q.track), (Submission.state, q.state), (Submission.verdict, q.verdict),
                       (Submission.family, q.family), (User.name, q.submitter)):
        if value:
            stmt = stmt.where(col == value)
    if q.flagged == "yes":
        stmt = stmt.where(or_(Submission.flagged.is_(True), Submission.disqualified.is_(True)))
    elif q.flagged == "no":
        stmt = stmt.where(Submission.flagged.is_(False), Submission.disqualified.is_(False))
    if q.awaiting == "1":
        stmt = stmt.where(or_(Submission.state == State.SCORED.value,
                              Submission.flagged.is_(True) & Submission.disqualified.is_(False)))
    if q.claimed_by == UNCLAIMED:
        stmt = stmt.where(ReviewClaim.submission_id.is_(None))
    elif q.claimed_by:
        stmt = stmt.where(Holder.name == q.claimed_by)
    since, until = parse_date(q.since, "since"), parse_date(q.until, "until")
    if since is not None:
        stmt = stmt.where(Submission.created_at >= dt.datetime.combine(since, dt.time(), dt.timezone.utc))
    if until is not None:
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
        stmt = stmt.where(Submission.created_at < end)
    return stmt


def ordered(stmt: Select[Any], q: QueueQuery) -> Select[Any]:
    col = SORTS[q.sort]
    key = col.desc() if q.dir == "desc" else col.asc()
    # Missing values (no measurement yet, unclaimed) sort last either way; ties keep the age order.
    return stmt.order_by(key.nulls_last(), Submission.created_at, Submission.id)


def count(session: Session, q: QueueQuery) -> int:
    return session.scalar(select(func.count()).select_from(base_select(q).subquery())) or 0


def page_rows(session: Session, q: QueueQuery) -> list[Any]:
    return list(session.execute(ordered(base_select(q), q).offset((q.page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all())


# -- export ----------------------------------------------------------------------------------------

EXPORT_COLUMNS = ("id", "name", "author", "submitter", "track", "family", "state", "verdict", "claimed_val_bpb",
                  "measured_val_bpb", "counted_bytes", "cap_bytes", "flagged", "disqualified", "claimed_by",
                  "created_at", "updated_at")


def _iso(v: dt.datetime | None) -> str | None:
    return v.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z") if v else None


def export_rows(session: Session, q: QueueQuery) -> list[dict[str, Any]]:
    """Every row the filters select (not just one page), in the queue's order, as plain values."""
    rows = session.execute(ordered(base_select(q), q).limit(EXPORT_MAX_ROWS)).all()
    out = []
    for sub, submitter, claimed_by in rows:
        out.append({
            "id": sub.id, "name": sub.name or sub.folder, "author": sub.author, "submitter": submitter,
            "track": sub.track, "family": sub.family, "state": sub.state, "verdict": sub.verdict,
            "claimed_val_bpb": sub.claimed_val_bpb, "measured_val_bpb": sub.measured_val_bpb,
            "counted_bytes": sub.counted_bytes, "cap_bytes": sub.cap_bytes, "flagged": sub.flagged,
            "disqualified": sub.disqualified, "claimed_by": claimed_by,
            "created_at": _iso(sub.created_at), "updated_at": _iso(sub.updated_at),
        })
    return out


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection");
# tab and carriage return are included because some spreadsheets strip them and then see the rest.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One cell's text: None is empty, booleans are true/false, and a formula-like start is
    neutralised with a leading apostrophe (which spreadsheets show as a text marker)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if isinstance(value, float) else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(EXPORT_COLUMNS)
    for r in rows:
        w.writerow([csv_cell(r[c]) for c in EXPORT_COLUMNS])
    return buf.getvalue()
