"""Data access for the HTTP side: create submissions, and build the views the API returns.

Keyword-only functions that take a session; the caller owns the transaction. Worker-side writes
(claims, results, the reaper) live in `api.core.lifecycle`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from api.core.auth import Principal
from api.core.db import utcnow
from api.core.intake import ParsedUpload, sha256_text
from api.core.leaderboard import claimed_author, provenance
from api.core.lifecycle import transition
from api.core.quota import OWNER_RERUN_ACTION
from api.core.models import (
    Attempt,
    AuditLog,
    Blob,
    ChunkRecordRow,
    Coverage,
    Queue,
    Result,
    RuleResult,
    State,
    StateTransition,
    Submission,
    SubmissionFile,
    User,
    Verdict,
)
from api.core.settings import Settings, get_settings
from gepa.compliance.source import is_code
from gepa.config import loads_json
from gepa.families.baseline import config as bcfg
from gepa.families.baseline.flops import eval_flops as baseline_flops
from gepa.families.gepa import config as gcfg
from gepa.families.gepa.flops import eval_flops as gepa_flops
from gepa.flops import flops_per_second
from gepa.shards import BUNDLED_VAL_GLOB, count_targets

TRACK_ALIASES = {
    "10min_16mb": "track_10min_16mb",
    "record": "track_10min_16mb",
    "non_record_16mb": "track_non_record_16mb",
    "non-record-16mb": "track_non_record_16mb",
    "non_record": "track_non_record_16mb",
    "non-record-unlimited-compute-16mb": "track_non_record_16mb",
    "non_record_unlimited_compute_16mb": "track_non_record_16mb",
}


def normalise_track(value: Any, default: str) -> str:
    if not isinstance(value, str) or not value.strip():
        return default
    v = value.strip().lower()
    if v.startswith("track_"):
        return v[:60]
    return TRACK_ALIASES.get(v, "track_" + v.replace("-", "_"))[:60]


def configured_tracks(settings: Settings) -> list[str]:
    """The tracks submissions may name: GOLFCHECK_TRACKS and the default track, normalised."""
    out: list[str] = []
    for t in (*settings.tracks, settings.default_track):
        n = normalise_track(t, settings.default_track)
        if n not in out:
            out.append(n)
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _text(value: Any, limit: int) -> str | None:
    return value.strip()[:limit] if isinstance(value, str) and value.strip() else None


def _upsert_blob(session: Session, sha256: str, size: int, rel_path: str) -> None:
    values = {"sha256": sha256, "size": size, "path": rel_path, "created_at": utcnow()}
    dialect = session.get_bind().dialect.name
    ins = pg_insert(Blob) if dialect == "postgresql" else sqlite_insert(Blob)
    session.execute(ins.values(**values).on_conflict_do_nothing(index_elements=["sha256"]))


def dedupe_key(artifact_sha256: str, code_sha256: str, config_sha256: str) -> str:
    return sha256_text(f"{artifact_sha256}:{code_sha256}:{config_sha256}")


def find_duplicate(session: Session, *, submitter_id: int, key: str) -> Submission | None:
    return session.scalar(select(Submission).where(Submission.submitter_id == submitter_id,
                                                   Submission.dedupe_key == key))


def create_submission(session: Session, *, settings: Settings, principal: Principal,
                      upload: ParsedUpload) -> tuple[Submission, bool]:
    """Insert the submission (received → queued) or return the existing identical one.

    Returns (row, created). A duplicate of a submission that `failed` (platform fault) is queued
    again, since the submitter is asking for the evaluation the platform owes them."""
    artifact, code = upload.one("artifact"), upload.one("code")
    assert artifact is not None and code is not None
    config_text = upload.config_canonical
    config_sha = sha256_text(config_text)
    key = dedupe_key(artifact.blob.sha256, code.blob.sha256, config_sha)
    existing = find_duplicate(session, submitter_id=principal.user_id, key=key)
    if existing is not None:
        if existing.state == State.FAILED.value:
            transition(session, existing, State.QUEUED, actor=principal.actor,
                       reason="submitted again after a platform failure", queue=Queue.CHECKS.value)
            # The same as the owner's re-run (api.core.contestant): counted on today's quota.
            session.add(AuditLog(actor=principal.actor, user_id=principal.user_id, action=OWNER_RERUN_ACTION,
                                 submission_id=existing.id, attempt=existing.attempt,
                                 details=json.dumps({"reason": "the same files uploaded again", "before": {"state": "failed"}})))
        return existing, False

    for f in upload.files:
        _upsert_blob(session, f.blob.sha256, f.blob.size, f.blob.rel_path)
    # Every code file a bundle ships (helper modules, native sources) counts as code bytes.
    code_bytes = code.blob.size + sum(f.blob.size for f in upload.files if f.role == "extra" and is_code(f.filename or ""))
    meta = upload.submission_meta or {}
    track = normalise_track(upload.track or meta.get("track"), settings.default_track)
    now = utcnow()
    sub = Submission(
        id=str(uuid.uuid4()), submitter_id=principal.user_id, state=State.RECEIVED.value, queue=None, attempt=0,
        stage_failures=0, created_at=now, updated_at=now,
        artifact_sha256=artifact.blob.sha256, code_sha256=code.blob.sha256,
        config_json=config_text, config_sha256=config_sha, dedupe_key=key,
        submission_json=upload.submission_json_text, track=track,
        name=_text(meta.get("name"), 300) or upload.folder, author=principal.name,
        folder=upload.folder, claimed_val_bpb=_number(meta.get("val_bpb")),
        claimed_val_loss=_number(meta.get("val_loss")),
        artifact_bytes=artifact.blob.size, code_bytes=code_bytes,
        counted_bytes=artifact.blob.size + code_bytes, cap_bytes=settings.cap_bytes,
        verdict="pending", chunks_done=0, flagged=False, disqualified=False,
    )
    session.add(sub)
    session.flush()
    for f in upload.files:
        session.add(SubmissionFile(submission_id=sub.id, role=f.role, filename=f.filename or f.role,
                                   sha256=f.blob.sha256, size=f.blob.size))
    session.add(StateTransition(submission_id=sub.id, from_state=None, to_state=State.RECEIVED.value, attempt=0,
                                actor=principal.actor, reason=None, at=now))
    transition(session, sub, State.QUEUED, actor=principal.actor, queue=Queue.CHECKS.value)
    return sub, True


# -- views -------------------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def queue_position(session: Session, sub: Submission) -> int | None:
    if sub.state != State.QUEUED.value or sub.queued_at is None:
        return None
    ahead = session.scalar(select(func.count()).select_from(Submission).where(
        Submission.state == State.QUEUED.value, Submission.queue == sub.queue,
        Submission.queued_at < sub.queued_at)) or 0
    return int(ahead) + 1


@functools.lru_cache(maxsize=256)
def _estimated_eval_s(config_json: str, val_glob: str, max_tokens: int | None, device: str) -> float | None:
    """Expected evaluation seconds from the FLOP model and the device calibration (gepa.flops).

    Only the GEPA and baseline families' configs and FLOP models are torch-free, so the API (which
    must not load torch: BENCHMARKS.md, upload memory) estimates those submissions only; others get None."""
    try:
        raw = loads_json(config_json)
        if isinstance(raw, dict) and raw.get("family") == bcfg.FAMILY_NAME:
            cfg, flops_of = bcfg.from_dict(raw), baseline_flops
        else:
            cfg, flops_of = gcfg.from_dict(raw), gepa_flops  # type: ignore[assignment]
        total = count_targets(val_glob or BUNDLED_VAL_GLOB, cfg.eval.seq_len, max_tokens)
    except Exception:  # noqa: BLE001 - an estimate is a nicety; a bad config is reported elsewhere
        return None
    kind = "cpu" if device == "cpu" else "h200"
    return round(flops_of(cfg, total).total / flops_per_second(kind), 1)


def _estimate(sub: Submission) -> float | None:
    if sub.state not in (State.RECEIVED.value, State.QUEUED.value, State.CHECKING.value, State.EVALUATING.value):
        return None
    s = get_settings()
    return _estimated_eval_s(sub.config_json, s.val_glob, s.max_val_tokens, s.device)


def _progress(sub: Submission) -> dict[str, Any] | None:
    if sub.state != State.EVALUATING.value:
        return None
    done, total = sub.chunks_done or 0, sub.chunks_total
    elapsed = (utcnow() - sub.eval_started_at).total_seconds() if sub.eval_started_at else None
    eta = None
    if total and done and elapsed is not None and done < total:
        eta = round(elapsed / done * (total - done), 1)
    elif total and done >= total:
        eta = 0.0
    return {"chunks_done": done, "chunks_total": total,
            "fraction": round(done / total, 4) if total else None,
            "elapsed_s": round(elapsed, 1) if elapsed is not None else None, "eta_s": eta}


def _rule_view(r: RuleResult, text: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"rule": r.rule, "stage": r.stage, "status": r.override_status or r.status,
                           "message": text(r.message) if text else r.message, "attempt": r.attempt}
    if r.title:
        out["title"] = r.title
    if r.evidence:
        try:
            out["evidence"] = json.loads(r.evidence)
        except ValueError:
            out["evidence"] = r.evidence
    if r.override_status:
        out["override"] = {"original_status": r.status, "reason": r.override_reason, "at": _iso(r.override_at)}
    return out


def current_rules(session: Session, submission_id: str) -> list[RuleResult]:
    """The latest result of each rule (a re-run's rules replace the earlier attempt's)."""
    rows = session.scalars(select(RuleResult).where(RuleResult.submission_id == submission_id)
                           .order_by(RuleResult.attempt, RuleResult.id))
    latest: dict[tuple[str, str], RuleResult] = {}
    for r in rows:
        latest[(r.stage, r.rule)] = r
    return list(latest.values())


def _json_or_none(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _config(config_json: str | None) -> dict[str, Any]:
    """The stored canonical config as an object ({} stands for the family's defaults)."""
    value = _json_or_none(config_json)
    return value if isinstance(value, dict) else {}


def family_view(sub: Submission) -> dict[str, str] | None:
    """The model family the checks detected ({"name", "title"}); None until they ran (or could not read it)."""
    if not sub.family:
        return None
    return {"name": sub.family, "title": sub.family_title or sub.family}


def verification(sub: Submission, result: Result | None) -> dict[str, Any]:
    """The one label a reader sees: `verified` only for a passing verdict on a result computed on
    the full canonical validation set; `demo` for a demo cut; else `unverified`, `failed` or
    `pending`, each with the reason."""
    label, note = "pending", "not measured yet"
    if sub.verdict == Verdict.FAIL.value:
        label, note = "failed", sub.reason or "a rule failed"
    elif result is not None:
        prov = provenance(result)
        if prov["coverage"] == Coverage.DEMO.value:
            label, note = "demo", (f"demo figure: validation cut to the first {result.max_val_tokens:,} targets "
                                   "(GOLFCHECK_MAX_VAL_TOKENS); not verified, never ranked or published")
        elif prov["coverage"] != Coverage.FULL.value:
            label, note = "unverified", ("computed on a validation set that is not the configured canonical one "
                                         "(sha256 " + str(result.val_sha256 or "unknown")[:16] + "…); never ranked or published")
        elif sub.verdict == Verdict.PASS.value:
            label, note = "verified", "the full canonical validation set was scored and the claim reproduced"
        else:
            label, note = "unverified", "the claim could not be reproduced (nothing claimed, or not comparable)"
    return {"label": label, "verified": label == "verified", "note": note}


# An absolute POSIX path of two or more segments (not a URL path: no scheme or host before it).
_ABS_PATH = r"(?<![\w.:/])/(?:[^\s'\"/:]+/)+([^\s'\"/:]*)"


def redact_paths(text: str | None) -> str | None:
    """`text` with absolute server paths cut to their last segment: submitters learn which file,
    not where the server keeps it."""
    return re.sub(_ABS_PATH, lambda m: "…/" + m.group(1), text) if text else text


def _public_actor(actor: str) -> str:
    return "worker" if actor.startswith("worker:") else actor


def submission_view(session: Session, sub: Submission, *, base: str = "/api/v1",
                    for_reviewer: bool = False) -> dict[str, Any]:
    """The submission as the API returns it. Submitters (the default) do not see which worker host
    and process ran an attempt, nor absolute server paths in error texts; reviewers see both."""
    text = (lambda t: t) if for_reviewer else redact_paths
    actor = (lambda a: a) if for_reviewer else _public_actor
    transitions = list(session.scalars(select(StateTransition).where(StateTransition.submission_id == sub.id)
                                       .order_by(StateTransition.at, StateTransition.id)))
    timestamps: dict[str, str | None] = {s.value: None for s in State}
    for t in transitions:
        timestamps[t.to_state] = _iso(t.at)
    attempts = list(session.scalars(select(Attempt).where(Attempt.submission_id == sub.id).order_by(Attempt.number)))
    result = session.get(Result, sub.result_id) if sub.result_id else None
    submitter = session.get(User, sub.submitter_id)
    files = list(session.scalars(select(SubmissionFile).where(SubmissionFile.submission_id == sub.id)
                                 .order_by(SubmissionFile.id)))
    counted = sub.counted_bytes if sub.counted_bytes is not None else sub.artifact_bytes + sub.code_bytes
    rules = current_rules(session, sub.id)
    published = timestamps[State.PUBLISHED.value] is not None
    return {
        "id": sub.id,
        "state": sub.state,
        "queue": sub.queue,
        "attempt": sub.attempt,
        "submitter": submitter.name if submitter else None,
        "track": sub.track,
        "name": sub.name,
        "author": sub.author,
        "claimed_author": claimed_author(sub.submission_json),
        "folder": sub.folder,
        "family": family_view(sub),
        "created_at": _iso(sub.created_at),
        "updated_at": _iso(sub.updated_at),
        "timestamps": timestamps,
        "queue_position": queue_position(session, sub),
        "estimated_eval_s": _estimate(sub),
        "progress": _progress(sub),
        "sizes": {
            "artifact_bytes": sub.artifact_bytes,
            "code_bytes": sub.code_bytes,
            "total_bytes": counted,
            "cap_bytes": sub.cap_bytes,
            "headroom_bytes": sub.cap_bytes - counted,
            "within_cap": counted <= sub.cap_bytes,
        },
        "config": _config(sub.config_json),
        "config_sha256": sub.config_sha256,
        "measured": None if result is None else {
            "val_bpb": result.val_bpb, "val_loss": result.val_loss, "mode": result.mode,
            "elapsed_s": result.elapsed_s, "device": result.device, "attempt": result.attempt,
            "verifier_version": result.verifier_version, "torch_version": result.torch_version,
            **provenance(result),
            "family": result.family,
            "extra": _json_or_none(result.extra),
        },
        "verification": verification(sub, result),
        "measured_val_bpb": sub.measured_val_bpb,
        "claimed_val_bpb": sub.claimed_val_bpb,
        "claimed_val_loss": sub.claimed_val_loss,
        "verdict": {
            "status": sub.verdict,
            "reason": text(sub.reason),
            "reason_kind": sub.reason_kind,
            "rules": [_rule_view(r, text) for r in rules],
        },
        "flagged": sub.flagged,
        "disqualified": sub.disqualified,
        "attempts": [{"number": a.number, "stage": a.stage, "outcome": a.outcome,
                      "worker": a.worker if for_reviewer else None,
                      "started_at": _iso(a.started_at), "finished_at": _iso(a.finished_at), "error": text(a.error)}
                     for a in attempts],
        "history": [{"from": t.from_state, "to": t.to_state, "at": _iso(t.at), "actor": actor(t.actor),
                     "attempt": t.attempt, "reason": text(t.reason)} for t in transitions],
        "files": [{"role": f.role, "filename": f.filename, "sha256": f.sha256, "size": f.size} for f in files],
        "links": {
            "self": f"{base}/submissions/{sub.id}",
            "chunks": f"{base}/submissions/{sub.id}/chunks",
            "leaderboard": f"{base}/leaderboard?track={sub.track}",
            # The public page and code exist once the entry was published (and stay afterwards).
            "code": f"/entries/{sub.id}/code" if published else None,
            "page": f"/entries/{sub.id}" if published else None,
        },
    }


def chunk_view(session: Session, sub: Submission, attempt: int | None = None) -> dict[str, Any]:
    """Per-chunk records of one attempt: the one that produced the result, else the newest."""
    if attempt is None:
        if sub.result_id:
            res = session.get(Result, sub.result_id)
            attempt = res.attempt if res else None
        if attempt is None:
            attempt = session.scalar(select(func.max(ChunkRecordRow.attempt))
                                     .where(ChunkRecordRow.submission_id == sub.id))
    rows = [] if attempt is None else list(session.scalars(
        select(ChunkRecordRow).where(ChunkRecordRow.submission_id == sub.id, ChunkRecordRow.attempt == attempt)
        .order_by(ChunkRecordRow.chunk_index)))
    return {
        "submission_id": sub.id,
        "attempt": attempt,
        "state": sub.state,
        "chunks_total": sub.chunks_total,
        "chunks": [{"index": r.chunk_index, "windows": r.windows, "tokens_scored": r.tokens_scored,
                    "bytes_scored": r.bytes_scored, "score_seconds": r.score_seconds,
                    "train_seconds": r.train_seconds, "running_loss": r.running_loss,
                    "running_bpb": r.running_bpb, "lr": r.lr, "at": _iso(r.created_at)} for r in rows],
    }
