"""The JSON the API answers with, as pydantic models: the OpenAPI document is generated from them.

Each route names its model (`response_model=` or `responses=`), so `/openapi.json` carries one
named schema per shape and clients can be generated from it. The views are still built as dicts
(api.core.crud, api.core.leaderboard) and sent as they are: the leaderboard is served from cached bytes, and
validating every answer would cost each request a second copy of it. What keeps the two in step is
the API test (tests/e2e/test_openapi_contract.py), which validates every answer it gets
against this document with undeclared fields refused, so a field added to a view without its
model fails there.

Field names are the wire names; a field that may be absent (not only null) has a default.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from api.core.models import State
from api.http.problems import KINDS


class Schema(BaseModel):
    # Aliases (`from` in a history step) are the wire names; models are documentation, built by tests.
    model_config = ConfigDict(populate_by_name=True)


# -- shared pieces -------------------------------------------------------------------------------


class Quota(Schema):
    """The caller's daily quota (UTC day) and their work in progress."""

    daily_limit: int
    used_today: int
    remaining: int = Field(ge=0)
    resets_at: dt.datetime
    active: int = Field(description="submissions of the caller received, queued, checking or evaluating")
    max_active: int


class Provenance(Schema):
    """What a measured number was computed on, against the canonical validation set."""

    coverage: Literal["full", "demo", "non-canonical"]
    demo: bool
    tokens_scored: int
    total_targets: int | None
    val_tokens: int | None
    bytes_scored: int
    canonical_bytes: int | None
    val_sha256: str | None
    canonical_val_sha256: str | None
    max_val_tokens: int | None = Field(description="the demo cut, when one applied")


class Seeds(Schema):
    count: int
    mean: float | None
    std: float | None = Field(description="sample standard deviation; null for fewer than two seeds")


# -- submissions ---------------------------------------------------------------------------------


class SubmissionLinks(Schema):
    self: str
    chunks: str
    leaderboard: str
    code: str | None = Field(description="the training script as text; null until the entry is published")
    page: str | None = Field(description="the public entry page; null until the entry is published")


class Family(Schema):
    name: str
    title: str


# One field per state: when the submission last entered it (null: never).
Timestamps = create_model("Timestamps", __base__=Schema,
                          **{s.value: (dt.datetime | None, ...) for s in State})  # type: ignore[call-overload]


class Progress(Schema):
    chunks_done: int
    chunks_total: int | None
    fraction: float | None
    elapsed_s: float | None
    eta_s: float | None


class Sizes(Schema):
    artifact_bytes: int
    code_bytes: int
    total_bytes: int = Field(description="code + artifact, as the size cap counts them")
    cap_bytes: int
    headroom_bytes: int
    within_cap: bool


class Measured(Provenance):
    val_bpb: float
    val_loss: float
    mode: str
    elapsed_s: float
    device: str
    attempt: int
    verifier_version: str
    torch_version: str | None
    family: str | None
    extra: dict[str, Any] | None = Field(description="the model family's own figures")


class Verification(Schema):
    label: Literal["verified", "demo", "unverified", "failed", "pending"]
    verified: bool
    note: str


class RuleOverride(Schema):
    original_status: str
    reason: str | None
    at: dt.datetime | None


class RuleResult(Schema):
    rule: str
    stage: str
    status: str
    message: str | None
    attempt: int
    title: str | None = None
    evidence: Any = Field(None, description="what the rule found (file, line, values), as the rule reports it")
    override: RuleOverride | None = None


class VerdictView(Schema):
    status: Literal["pending", "pass", "fail", "unverified"]
    reason: str | None
    reason_kind: str | None
    rules: list[RuleResult]


class AttemptView(Schema):
    number: int
    stage: str
    outcome: str
    worker: str | None = Field(description="shown to reviewers only")
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None


class HistoryStep(Schema):
    from_: State | None = Field(alias="from")
    to: State
    at: dt.datetime
    actor: str
    attempt: int
    reason: str | None


class SubmittedFile(Schema):
    role: str = Field(description="artifact, code, config, submission_json, log, bundle or extra")
    filename: str
    sha256: str
    size: int


class SubmissionDetail(Schema):
    """One submission: its state, sizes, measured result, verdict with rule evidence, and history."""

    id: str
    state: State
    queue: Literal["checks", "eval"] | None
    attempt: int
    submitter: str | None
    track: str
    name: str | None
    author: str | None
    claimed_author: str | None
    folder: str | None
    family: Family | None
    created_at: dt.datetime
    updated_at: dt.datetime | None
    timestamps: Timestamps  # type: ignore[valid-type]
    queue_position: int | None
    estimated_eval_s: float | None
    progress: Progress | None
    sizes: Sizes
    config: dict[str, Any] = Field(description="the evaluation config the submission is evaluated with, as "
                                   "submitted ({} means the family's defaults)")
    config_sha256: str
    measured: Measured | None
    verification: Verification
    measured_val_bpb: float | None
    claimed_val_bpb: float | None
    claimed_val_loss: float | None
    verdict: VerdictView
    flagged: bool
    disqualified: bool
    attempts: list[AttemptView]
    history: list[HistoryStep]
    files: list[SubmittedFile]
    links: SubmissionLinks


class SubmissionAccepted(SubmissionDetail):
    """The answer to an upload: the submission, the quota after it, and whether it already existed."""

    quota: Quota
    duplicate: bool = Field(description="true: an identical submission of yours already existed (200)")


class SubmissionSummaryLinks(Schema):
    self: str
    chunks: str


class SubmissionSummary(Schema):
    id: str
    state: State
    track: str
    name: str | None
    verdict: Literal["pending", "pass", "fail", "unverified"]
    measured_val_bpb: float | None
    claimed_val_bpb: float | None
    created_at: dt.datetime
    links: SubmissionSummaryLinks


class SubmissionList(Schema):
    total: int = Field(description="submissions matching the filter, over all pages")
    limit: int
    offset: int
    submissions: list[SubmissionSummary]


class Chunk(Schema):
    index: int
    windows: int
    tokens_scored: int
    bytes_scored: int
    score_seconds: float
    train_seconds: float
    running_loss: float
    running_bpb: float
    lr: float
    at: dt.datetime | None


class ChunkList(Schema):
    submission_id: str
    attempt: int | None = Field(description="the attempt shown: the one that produced the result, else the newest")
    state: State
    chunks_total: int | None
    chunks: list[Chunk]


# -- leaderboard ---------------------------------------------------------------------------------


class EntryLinks(Schema):
    self: str | None = Field(description="the entry in the API (GET /api/v1/submissions/{id}, for its submitter "
                             "and reviewers); null for ingested history, which has no API resource")
    page: str = Field(description="the public entry page")
    code: str = Field(description="the training script: served here, or the challenge repository's folder")


class VerifiedEntry(Provenance):
    """A submission measured here on the full canonical validation set, and published."""

    rank: int
    status: Literal["verified"]
    track: str
    folder: str | None
    name: str | None
    author: str | None
    claimed_author: str | None
    family: str | None
    family_title: str | None
    val_bpb: float
    claimed_val_bpb: float | None
    verdict: str
    submission_id: str
    bytes_total: int | None
    size_bytes: int | None
    size_source: Literal["measured"]
    submitted_at: dt.datetime
    date: dt.date
    runs: int = Field(description="verified runs of this participant and method")
    seeds: Seeds
    hardware: str
    links: EntryLinks


class ClaimedEntry(Schema):
    """A historical record of the challenge repository: the authors' numbers, not measured here."""

    rank: int | None
    status: Literal["claimed"]
    track: str
    folder: str
    name: str | None
    author: str | None
    val_bpb: float | None
    verdict: str | None
    review: str | None = Field(description="the verdict, or `historical` when only the missing code was found")
    date: str | None
    bytes_total: int | None
    size_bytes: int | None
    size_source: Literal["logged", "claimed"] | None
    seeds: Seeds
    hardware: str | None
    links: EntryLinks
    score_source: str | None
    support: str | None = Field(None, description="the record_support folder whose re-run this row shows")


class ProgressionPoint(Schema):
    date: str
    val_bpb: float
    name: str | None
    status: Literal["verified", "claimed"]


class VerifiedSection(Schema):
    total: int
    entries: list[VerifiedEntry]


class ClaimedSection(Schema):
    total: int
    note: str
    entries: list[ClaimedEntry]


class Leaderboard(Schema):
    track: str
    demo: bool
    demo_note: str | None = None
    tracks: list[str]
    limit: int
    offset: int
    runs: Literal["best", "all"]
    progression: list[ProgressionPoint]
    verified: VerifiedSection
    claimed_only: ClaimedSection


# -- health and errors ---------------------------------------------------------------------------


class Liveness(Schema):
    status: Literal["ok"]


class ReadinessChecks(Schema):
    database: bool
    broker: bool
    embedded_worker: bool | None = Field(None, description="present when the server hosts the worker")


class Readiness(Schema):
    status: Literal["ready"]
    checks: ReadinessChecks


class FieldError(Schema):
    loc: list[str]
    msg: str
    type: str


class Problem(Schema):
    """An error (RFC 9457 problem details). Switch on `type` or `kind`, never on `title`."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(pattern="^urn:golfcheck:problem:")
    title: str
    status: int = Field(ge=400, le=599)
    kind: Literal[tuple(sorted(KINDS))]  # type: ignore[valid-type]
    detail: str | None = None
    instance: str | None = None
    field: str | None = Field(None, description="the form field at fault")
    limit_bytes: int | None = None
    limit_parts: int | None = None
    errors: list[FieldError] | None = Field(None, description="each invalid parameter (validation-error)")
    quota: Quota | None = Field(None, description="the quota that refused the upload")
    checks: ReadinessChecks | None = Field(None, description="which backing service is down (/readyz)")
