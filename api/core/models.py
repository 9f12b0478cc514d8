"""ORM models (SQLAlchemy 2 `Mapped` style). The schema is created by Alembic migrations only;
`migrations/versions/` must change together with this file (a test compares the two).

Tables, and who they are for:
- users, api_tokens: identities and hashed bearer tokens (roles, revocation, per-user daily quota).
- blobs: content-addressed files (sha256 → size, path); submission_files links a submission to its
  artifact, code, config, submission.json, logs and bundle.
- submissions: one row per submission, the authority for its state; `attempt` is the fencing
  token every worker write is checked against.
- state_transitions: every state change with time, actor and reason (the submitter-facing history).
- attempts: one row per worker claim of a stage (check or eval), with heartbeat and outcome.
- chunk_records: per-chunk timing and running BPB, written while an evaluation runs.
- results: the measured numbers, at most one per (submission, attempt).
- rule_results: per-rule compliance results, with reviewer override columns.
- audit_log: append-only record of every action by anyone (worker, reaper, reviewer, CLI).
- review_actions, flags: reviewer decisions (publish, flag, disqualify, override, re-run).
- records: historical record folders ingested from the challenge repository (claimed numbers).
- web_sessions: reviewer browser sessions for the dashboard (hashed cookie, CSRF token).
- review_claims: which reviewer is working on a queue item (claimed by them or assigned to them).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Optional

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from api.core.db import utcnow


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite hands back naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        value = value.astimezone(dt.timezone.utc)
        if getattr(dialect, "name", "") == "sqlite":
            # SQLite compares datetimes as text: store one fixed naive-UTC format.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# -- enumerations (stored as short strings so SQLite and PostgreSQL agree) --------------------


class State(str, enum.Enum):
    RECEIVED = "received"
    QUEUED = "queued"
    CHECKING = "checking"
    EVALUATING = "evaluating"
    SCORED = "scored"
    PUBLISHED = "published"
    REJECTED = "rejected"   # the submission is at fault (with a reason); never retried
    FAILED = "failed"       # the platform is at fault, after automatic retries ran out
    WITHDRAWN = "withdrawn"  # its submitter took it back before publication (api.core.contestant); final


FINAL_STATES = frozenset({State.PUBLISHED, State.REJECTED, State.FAILED, State.WITHDRAWN})


class Queue(str, enum.Enum):
    CHECKS = "checks"   # CPU: size cap, artifact validation, config and static code rules
    EVAL = "eval"       # GPU: the evaluation, one task per GPU


class Role(str, enum.Enum):
    SUBMITTER = "submitter"
    REVIEWER = "reviewer"
    ADMIN = "admin"


class Verdict(str, enum.Enum):
    PENDING = "pending"
    PASS = "pass"
    FAIL = "fail"
    # Measured, nothing failed, but not verified: a demo cut, a non-canonical validation set, or
    # no claim to reproduce. Never ranked, never published (gepa.compliance.engine.final_verdict).
    UNVERIFIED = "unverified"


class Coverage(str, enum.Enum):
    """Which validation data a result was computed on (results.coverage)."""

    FULL = "full"                    # the whole canonical validation set (sha256 matches the configured one)
    DEMO = "demo"                    # cut by GOLFCHECK_MAX_VAL_TOKENS / --max-tokens
    NON_CANONICAL = "non-canonical"  # another set, part of one, or no canonical set configured
    PARTIAL = "partial"              # the canonical set, but the window rule left targets unscored


# -- identities ------------------------------------------------------------------------------


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    # Per-user override of the daily submission quota (None: the service default).
    daily_quota: Mapped[Optional[int]] = mapped_column(Integer)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # sha256 of the token: tokens are 256-bit random, so a fast hash is enough and a stolen
    # database does not reveal usable tokens.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings to tell tokens apart
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    expires_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    revoked_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[Optional[str]] = mapped_column(Text)


# -- files -------------------------------------------------------------------------------------


class Blob(Base):
    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(String(300))  # relative to the blob directory
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SubmissionFile(Base):
    __tablename__ = "submission_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))  # artifact, code, config, submission_json, log, bundle
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    size: Mapped[int] = mapped_column(BigInteger)


# -- submissions -------------------------------------------------------------------------------


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (
        # The same artifact + code + config from the same submitter is one submission.
        UniqueConstraint("submitter_id", "dedupe_key"),
        Index("ix_submissions_state_queue_queued_at", "state", "queue", "queued_at"),
        Index("ix_submissions_submitter_id_created_at", "submitter_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    submitter_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(20), index=True)
    queue: Mapped[Optional[str]] = mapped_column(String(20))       # the queue it waits in / runs on
    attempt: Mapped[int] = mapped_column(Integer, default=0)       # fencing token, +1 per claim
    stage_failures: Mapped[int] = mapped_column(Integer, default=0)  # platform faults in this stage
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    queued_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)   # entered the queue
    enqueued_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)  # last message sent
    heartbeat_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    worker: Mapped[Optional[str]] = mapped_column(String(200))

    artifact_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    code_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    config_json: Mapped[str] = mapped_column(Text)  # canonical JSON as submitted ("{}" for defaults)
    config_sha256: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str] = mapped_column(String(64))
    submission_json: Mapped[Optional[str]] = mapped_column(Text)

    track: Mapped[str] = mapped_column(String(60))
    name: Mapped[Optional[str]] = mapped_column(String(300))
    author: Mapped[Optional[str]] = mapped_column(String(200))
    folder: Mapped[Optional[str]] = mapped_column(String(300))  # records folder name, from a bundle
    # The model family the checks stage detected (gepa.families): its config name and its title.
    family: Mapped[Optional[str]] = mapped_column(String(40))
    family_title: Mapped[Optional[str]] = mapped_column(String(200))
    claimed_val_bpb: Mapped[Optional[float]] = mapped_column(Float)
    claimed_val_loss: Mapped[Optional[float]] = mapped_column(Float)

    artifact_bytes: Mapped[int] = mapped_column(BigInteger)
    code_bytes: Mapped[int] = mapped_column(BigInteger)
    counted_bytes: Mapped[Optional[int]] = mapped_column(BigInteger)  # code + artifact as the cap counts them
    cap_bytes: Mapped[int] = mapped_column(BigInteger)

    measured_val_bpb: Mapped[Optional[float]] = mapped_column(Float)
    measured_val_loss: Mapped[Optional[float]] = mapped_column(Float)
    result_id: Mapped[Optional[int]] = mapped_column(Integer)
    verdict: Mapped[str] = mapped_column(String(20), default=Verdict.PENDING.value)
    reason: Mapped[Optional[str]] = mapped_column(Text)          # why rejected / failed
    reason_kind: Mapped[Optional[str]] = mapped_column(String(60))

    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    chunks_total: Mapped[Optional[int]] = mapped_column(Integer)
    eval_started_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

    # Reviewer-controlled (dashboard): a flagged or disqualified result leaves the leaderboard.
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    disqualified: Mapped[bool] = mapped_column(Boolean, default=False)


class StateTransition(Base):
    __tablename__ = "state_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[Optional[str]] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    attempt: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[Optional[str]] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (UniqueConstraint("submission_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(20))   # checks | eval
    outcome: Mapped[str] = mapped_column(String(20), default="running")
    # running | succeeded | rejected | error (platform fault) | abandoned (heartbeat stopped) | withdrawn
    worker: Mapped[Optional[str]] = mapped_column(String(200))
    task_id: Mapped[Optional[str]] = mapped_column(String(100))
    device: Mapped[Optional[str]] = mapped_column(String(100))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    error: Mapped[Optional[str]] = mapped_column(Text)


class ChunkRecordRow(Base):
    __tablename__ = "chunk_records"
    __table_args__ = (UniqueConstraint("submission_id", "attempt", "chunk_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    chunk_index: Mapped[int] = mapped_column(Integer)
    windows: Mapped[int] = mapped_column(Integer)
    tokens_scored: Mapped[int] = mapped_column(BigInteger)
    bytes_scored: Mapped[int] = mapped_column(BigInteger)
    score_seconds: Mapped[float] = mapped_column(Float)
    train_seconds: Mapped[float] = mapped_column(Float)
    running_loss: Mapped[float] = mapped_column(Float)
    running_bpb: Mapped[float] = mapped_column(Float)
    lr: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Result(Base):
    __tablename__ = "results"
    __table_args__ = (UniqueConstraint("submission_id", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(20))
    val_loss: Mapped[float] = mapped_column(Float)
    val_bpb: Mapped[float] = mapped_column(Float)
    tokens_scored: Mapped[int] = mapped_column(BigInteger)
    bytes_scored: Mapped[int] = mapped_column(BigInteger)
    total_targets: Mapped[int] = mapped_column(BigInteger, default=0)
    elapsed_s: Mapped[float] = mapped_column(Float)
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    device: Mapped[str] = mapped_column(String(100))
    # Reproduction metadata: what produced the number.
    verifier_version: Mapped[str] = mapped_column(String(40))
    torch_version: Mapped[Optional[str]] = mapped_column(String(40))
    config_sha256: Mapped[str] = mapped_column(String(64))
    max_val_tokens: Mapped[Optional[int]] = mapped_column(BigInteger)
    family: Mapped[Optional[str]] = mapped_column(String(40))  # the model family that scored it
    extra: Mapped[Optional[str]] = mapped_column(Text)  # JSON: the family's own figures (EvalResult.extra)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What the number was computed on (migration 0003): the validation shards' sha256 and size,
    # the canonical fingerprint the verifier was configured with, and the resulting coverage.
    val_sha256: Mapped[Optional[str]] = mapped_column(String(64))
    val_tokens: Mapped[Optional[int]] = mapped_column(BigInteger)
    canonical_val_sha256: Mapped[Optional[str]] = mapped_column(String(64))
    canonical_bytes: Mapped[Optional[int]] = mapped_column(BigInteger)  # bytes of the full canonical set, when known
    coverage: Mapped[Optional[str]] = mapped_column(String(20))


class RuleResult(Base):
    __tablename__ = "rule_results"
    __table_args__ = (UniqueConstraint("submission_id", "attempt", "rule"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(20))   # checks | score
    rule: Mapped[str] = mapped_column(String(80))
    title: Mapped[Optional[str]] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20))  # pass | warn | fail | skip
    message: Mapped[Optional[str]] = mapped_column(Text)
    evidence: Mapped[Optional[str]] = mapped_column(Text)  # JSON
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A reviewer may override a rule's status; the original stays for the record.
    override_status: Mapped[Optional[str]] = mapped_column(String(20))
    override_reason: Mapped[Optional[str]] = mapped_column(Text)
    override_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    override_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_submission_id_at", "submission_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))   # user:NAME | worker:HOST | system:reaper | cli
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(60))
    submission_id: Mapped[Optional[str]] = mapped_column(String(36))
    attempt: Mapped[Optional[int]] = mapped_column(Integer)
    details: Mapped[Optional[str]] = mapped_column(Text)  # JSON: before/after, reason, evidence


class ReviewAction(Base):
    __tablename__ = "review_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(30))  # publish | flag | unflag | disqualify | override | rerun | comment
    reason: Mapped[Optional[str]] = mapped_column(Text)
    payload: Mapped[Optional[str]] = mapped_column(Text)  # JSON
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Flag(Base):
    __tablename__ = "flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[Optional[str]] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    record_id: Mapped[Optional[int]] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)
    raised_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    public: Mapped[bool] = mapped_column(Boolean, default=True)  # reasons are shown publicly by default
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | resolved
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    resolved_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))


class Record(Base):
    """A historical record folder of the challenge repository: claimed numbers only (no artifact)."""

    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("track", "folder"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    track: Mapped[str] = mapped_column(String(60))
    folder: Mapped[str] = mapped_column(String(300))
    name: Mapped[Optional[str]] = mapped_column(String(300))
    author: Mapped[Optional[str]] = mapped_column(String(200))
    github_id: Mapped[Optional[str]] = mapped_column(String(100))
    date: Mapped[Optional[str]] = mapped_column(String(40))
    claimed_val_bpb: Mapped[Optional[float]] = mapped_column(Float)
    claimed_val_loss: Mapped[Optional[float]] = mapped_column(Float)
    bytes_total: Mapped[Optional[int]] = mapped_column(BigInteger)
    verdict: Mapped[Optional[str]] = mapped_column(String(20))
    rank: Mapped[Optional[int]] = mapped_column(Integer)     # from gepa.compliance ranking, per track
    data: Mapped[Optional[str]] = mapped_column(Text)        # JSON: the normalised record
    rule_results: Mapped[Optional[str]] = mapped_column(Text)  # JSON: check_record output
    source_sha256: Mapped[str] = mapped_column(String(64))   # hash of the folder's files: re-ingest is a no-op
    ingested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebSession(Base):
    """A reviewer's browser session on the dashboard (`api.http.pages`). The cookie carries a random
    value; only its sha256 is stored, so a leaked database does not yield live sessions. A session
    is tied to the token it was opened with: revoking the token ends the session too."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie value
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))  # per-session; every form POST must echo it
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)  # logout


class ReviewClaim(Base):
    """Who is reviewing a submission: at most one claim per submission. A reviewer claims an item
    for themselves or assigns it to another reviewer; releasing deletes the row. The history of
    claims lives in the audit log (`review.claim`, `review.assign`, `review.release`)."""

    __tablename__ = "review_claims"

    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    assigned_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
