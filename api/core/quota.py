"""Abuse limits on submitting: a daily quota, a cap on work in progress, and an upload rate limit.

- Daily quota: submissions created in the current UTC day, per submitter. Submissions that
  `failed` (the platform's fault) do not count, so an outage never costs anyone their quota;
  `rejected` and `withdrawn` ones do (the submitter's choice). An owner's re-run of an older
  submission (api.core.contestant.rerun, or the same files uploaded again after a platform failure)
  counts on the day it was asked for, like a new upload.
  `users.daily_quota` overrides the service default.
- Concurrency cap: at most `max_active_per_submitter` submissions of one submitter in
  received/queued/checking/evaluating at once, so one person cannot fill the GPU queue.
- Rate limit: a token bucket per user on the upload route (attempts, whatever their outcome), in
  the memory of each API process: with N API processes a user gets at most N × the rate. It
  exists to stop a runaway client from streaming uploads in a loop, not as an exact count.

The quota and the cap are checked twice: before the body is read (cheap refusal, no bytes
stored) and again inside the transaction that inserts the submission, with the user's row locked,
so two concurrent uploads cannot both take the last slot.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.core.db import utcnow
from api.core.models import AuditLog, State, Submission, User
from api.core.settings import Settings

# The audit action of a submitter's own re-run (written by api.core.contestant, counted here).
OWNER_RERUN_ACTION = "contestant.rerun"
ACTIVE_STATES = (State.RECEIVED.value, State.QUEUED.value, State.CHECKING.value, State.EVALUATING.value)


def _iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def utc_day(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start = now.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + dt.timedelta(days=1)


@dataclass(frozen=True)
class QuotaStatus:
    daily_limit: int
    used_today: int
    resets_at: dt.datetime
    active: int
    max_active: int

    @property
    def remaining(self) -> int:
        return max(0, self.daily_limit - self.used_today)

    def to_dict(self) -> dict[str, Any]:
        return {"daily_limit": self.daily_limit, "used_today": self.used_today, "remaining": self.remaining,
                "resets_at": _iso(self.resets_at), "active": self.active, "max_active": self.max_active}



class LimitExceeded(Exception):
    """One more submission would pass a limit. `kind` names which ("quota-exceeded", "too-many-active",
    "rate-limited": the HTTP layer answers each with its 429 problem); `retry_after_s` says when
    trying again can succeed; `quota` is the caller's quota when the limit is a quota."""

    def __init__(self, kind: str, message: str, *, retry_after_s: int, quota: QuotaStatus | None = None):
        super().__init__(message)
        self.kind, self.message, self.retry_after_s, self.quota = kind, message, retry_after_s, quota


def status(session: Session, settings: Settings, user_id: int, *, lock: bool = False) -> QuotaStatus:
    """The user's quota now. `lock=True` locks the user's row (PostgreSQL) for the transaction, which
    serialises concurrent uploads of one user between this count and their insert."""
    q = select(User.daily_quota).where(User.id == user_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    override = session.scalar(q)
    start, end = utc_day(utcnow())
    rerun_today = select(AuditLog.submission_id).where(
        AuditLog.action == OWNER_RERUN_ACTION, AuditLog.user_id == user_id, AuditLog.at >= start)
    used = session.scalar(select(func.count()).select_from(Submission).where(
        Submission.submitter_id == user_id, Submission.state != State.FAILED.value,
        (Submission.created_at >= start) | Submission.id.in_(rerun_today))) or 0
    active = session.scalar(select(func.count()).select_from(Submission).where(
        Submission.submitter_id == user_id, Submission.state.in_(ACTIVE_STATES))) or 0
    limit = settings.daily_quota if override is None else int(override)
    return QuotaStatus(daily_limit=limit, used_today=int(used), resets_at=end, active=int(active),
                       max_active=settings.max_active_per_submitter)


def enforce(q: QuotaStatus) -> None:
    """Raise `LimitExceeded` when one more submission would exceed the daily quota or the concurrency cap."""
    if q.used_today >= q.daily_limit:
        retry = max(1, math.ceil((q.resets_at - utcnow()).total_seconds()))
        raise LimitExceeded("quota-exceeded", f"you have used all {q.daily_limit} submissions of today (UTC); the "
                            f"quota resets at {_iso(q.resets_at)}", retry_after_s=retry, quota=q)
    if q.active >= q.max_active:
        raise LimitExceeded("too-many-active", f"you already have {q.active} submissions waiting or running (limit "
                            f"{q.max_active}); submit again when one of them has finished", retry_after_s=60, quota=q)


class RateLimiter:
    """Token bucket per key: `per_minute` tokens, refilled continuously; thread-safe."""

    def __init__(self, per_minute: int, clock: Any = time.monotonic):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[Any, tuple[float, float]] = {}

    def take(self, key: Any) -> float:
        """Take one token; returns 0 if granted, else the seconds until one is available."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > 100_000:  # bounded memory: forget full buckets
                    self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.capacity - 1}
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


def check_rate(limiter: RateLimiter, user_id: int) -> None:
    wait = limiter.take(user_id)
    if wait > 0:
        raise LimitExceeded("rate-limited", f"too many uploads; at most {int(limiter.capacity)} per minute. "
                            f"Retry in {math.ceil(wait)} s", retry_after_s=math.ceil(wait))
