"""The work behind the thin Celery tasks, as plain functions (no Celery import).

`run_stage(settings, submission_id, stage)` claims the stage (compare-and-set on the row), runs
it under a heartbeat thread, and writes the outcome through `api.lifecycle`, which fences every
write with the claimed attempt number. Errors are sorted by whose fault they are:

- `gepa.errors.InputError` → the submission is rejected with the error's one-line message;
- the heartbeat lost the row (a newer attempt took over) → stop quietly, write nothing;
- anything else → a platform fault: the stage is queued again, and fails after `max_attempts`.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api import lifecycle
from api.db import session_scope
from api.lifecycle import Claim, Measured
from api.logsetup import bind
from api.models import Queue, Submission, SubmissionFile
from api.settings import Settings
from api.storage import BlobStore
from gepa import families, runner
from gepa.families.base import Family
from sqlalchemy import select
from worker import checks

log = logging.getLogger("golfcheck.pipeline")
VERIFIER_VERSION = "golfcheck-0.1.0"
TIME_LIMIT_GRACE_S = 30


class NonFiniteResult(RuntimeError):
    """The evaluation returned NaN or infinity."""


class LostOwnership(Exception):
    """A newer attempt owns the submission; this one must stop without writing anything."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Touches the row every `heartbeat_s` while a stage runs; sets `lost` when the claim is gone."""

    def __init__(self, settings: Settings, claim: Claim):
        self.settings = settings
        self.claim = claim
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{claim.submission_id[:8]}", daemon=True)

    def _run(self) -> None:
        with bind(submission_id=self.claim.submission_id, attempt=self.claim.attempt):
            while not self._stop.wait(self.settings.heartbeat_s):
                try:
                    if not lifecycle.heartbeat(self.settings, self.claim):
                        log.warning("lost the submission to another attempt; stopping")
                        self.lost.set()
                        return
                except Exception as exc:  # noqa: BLE001 - a database blip must not kill the stage
                    log.warning("heartbeat failed: %s: %s", type(exc).__name__, exc)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def resolve_device(setting: str) -> str:
    if setting != "auto":
        return setting
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class FamilyDataMissing(RuntimeError):
    """The server has no validation data for a submission's family (an operator fix, not the submitter's)."""


@dataclass(frozen=True)
class ValInputs:
    val_glob: str | None        # None: the family's bundled validation sample
    tokenizer: str | None       # None: the family's bundled tokenizer
    sidecar_glob: str | None    # a shipped byte sidecar, compared but never trusted (CaseOps)
    canonical_sha256: str | None  # fingerprint of the family's full canonical validation set, if configured


def val_inputs(settings: Settings, family: Family) -> ValInputs:
    """The validation data `family` is scored on.

    A family listed in GOLFCHECK_FAMILY_DATA gets its own shards and tokenizer. A family that
    tokenizes like the default one gets GOLFCHECK_VAL_GLOB / GOLFCHECK_TOKENIZER (else its
    bundled sample). Any other family never gets those sp1024 shards (its model would score
    token ids of another vocabulary, a meaningless number): it gets its own bundled sample if it
    ships one (a demo set, never the canonical one), and otherwise the evaluation is refused."""
    data = settings.data_for(family.name)
    if data is not None:
        return ValInputs(data.val_glob, data.tokenizer or None, data.sidecar_glob or None, data.val_sha256 or None)
    default = families.get(families.DEFAULT_FAMILY)
    if family.tokenizer_asset == default.tokenizer_asset:
        return ValInputs(settings.val_glob or None, settings.tokenizer or None, None, None)
    if family.val_asset:
        return ValInputs(None, None, None, None)
    raise FamilyDataMissing(
        f"this server has no validation data for the {family.name} family ({family.title}); the operator must "
        f"add it to GOLFCHECK_FAMILY_DATA (docs/service.md), then the submission can be sent again")


def estimate_chunks(prep: Any, val_glob: str | None, max_tokens: int | None) -> int | None:
    """How many chunk records the evaluation will report (for progress and ETA); None if unknown."""
    try:
        return runner.count_chunks(prep, val_glob, max_tokens) or None
    except Exception as exc:  # noqa: BLE001 - progress is a nicety; never fail the stage over it
        log.info("could not estimate chunk count: %s", exc)
        return None


def _load(settings: Settings, submission_id: str) -> tuple[Submission, list[SubmissionFile]]:
    with session_scope(settings) as session:
        sub = session.get(Submission, submission_id)
        assert sub is not None
        files = list(session.scalars(select(SubmissionFile).where(SubmissionFile.submission_id == submission_id)))
        session.expunge_all()
    return sub, files


def run_stage(settings: Settings, submission_id: str, stage: str, *, task_id: str | None = None) -> str | None:
    """Run one stage if the row says it is due. Returns the new state, or None if nothing was done."""
    from gepa.errors import InputError

    claim = lifecycle.claim(settings, submission_id, stage, worker=worker_name(), task_id=task_id)
    if claim is None:
        return None
    with bind(submission_id=submission_id, attempt=claim.attempt):
        log.info("claimed %s stage", stage)
        with Heartbeat(settings, claim) as hb:
            try:
                if stage == Queue.CHECKS.value:
                    state = _checks(settings, claim)
                else:
                    state = _evaluate(settings, claim, hb)
            except InputError as exc:
                log.info("rejected: %s", exc.message)
                return "rejected" if lifecycle.reject(settings, claim, kind=exc.kind, reason=exc.message) else None
            except LostOwnership:
                return None
            except Exception as exc:  # noqa: BLE001 - everything else is the platform's fault
                if hb.lost.is_set():
                    return None
                log.exception("platform fault in %s stage", stage)
                new = lifecycle.platform_fault(settings, claim, f"{type(exc).__name__}: {exc}")
                return new.value if new else None
        log.info("%s stage done: %s", stage, state)
        return state


def _checks(settings: Settings, claim: Claim) -> str | None:
    sub, files = _load(settings, claim.submission_id)
    store = BlobStore(settings.blob_dir)
    inputs = checks.CheckInputs(
        artifact_path=store.path(sub.artifact_sha256),
        code_path=store.path(sub.code_sha256),
        config_json=sub.config_json,
        submission_json=sub.submission_json,
        track=sub.track,
        cap_bytes=sub.cap_bytes,
        log_paths=[store.path(f.sha256) for f in files if f.role == "log"],
        max_decompressed_bytes=settings.max_decompressed_bytes,
    )
    out = checks.run_check_rules(inputs)
    state = lifecycle.finish_checks(settings, claim, out.outcomes, counted_bytes=out.counted_bytes, family=out.family)
    if state is None:
        raise LostOwnership()
    return state.value


def _evaluate(settings: Settings, claim: Claim, hb: Heartbeat) -> str | None:
    import torch

    from gepa.errors import InputError
    from gepa.evaluate import EvaluationCancelled

    sub, _ = _load(settings, claim.submission_id)
    artifact = BlobStore(settings.blob_dir).path(sub.artifact_sha256)
    prep = runner.prepare(artifact, sub.config_json or None, max_decompressed_bytes=settings.max_decompressed_bytes)
    data = val_inputs(settings, prep.family)
    device = resolve_device(settings.device)
    total = estimate_chunks(prep, data.val_glob, settings.max_val_tokens)
    deadline = time.monotonic() + max(1, settings.eval_time_limit_s - TIME_LIMIT_GRACE_S)
    timed_out = threading.Event()

    def on_chunk(rec: Any) -> None:
        if not lifecycle.record_chunk(settings, claim, rec, total):
            hb.lost.set()
        if settings.eval_chunk_delay_s:
            time.sleep(settings.eval_chunk_delay_s)  # demos and fault-injection tests only

    def should_stop() -> bool:
        if time.monotonic() > deadline:
            timed_out.set()
        return hb.lost.is_set() or timed_out.is_set()

    t0 = time.monotonic()
    try:
        result = runner.run_prepared(prep, val_glob=data.val_glob, tokenizer=data.tokenizer,
                                     sidecar_glob=data.sidecar_glob, device=device, on_chunk=on_chunk,
                                     should_stop=should_stop, max_tokens=settings.max_val_tokens)
    except EvaluationCancelled:
        if hb.lost.is_set():
            raise LostOwnership() from None
        raise InputError(f"the evaluation did not finish within {settings.eval_time_limit_s} s") from None
    if hb.lost.is_set():
        raise LostOwnership()
    if data.canonical_sha256 and result.val_sha256 != data.canonical_sha256:
        log.warning("scored on validation data %s, not the %s family's canonical set %s",
                    result.val_sha256[:12], prep.family.name, data.canonical_sha256[:12])
    if not (math.isfinite(float(result.val_bpb)) and math.isfinite(float(result.val_loss))):
        # The checks refuse non-finite weights, so a NaN here is the evaluator's or the device's
        # doing: a platform fault (retried, then `failed` for a reviewer), never a published number.
        raise NonFiniteResult(f"the evaluation produced a non-finite result (val_bpb={result.val_bpb}, "
                              f"val_loss={result.val_loss})")
    elapsed = time.monotonic() - t0
    measured = Measured(
        mode=result.mode, val_loss=float(result.val_loss), val_bpb=float(result.val_bpb),
        tokens_scored=int(result.tokens_scored), bytes_scored=int(result.bytes_scored),
        total_targets=int(result.total_targets), elapsed_s=elapsed,
        gpu_seconds=elapsed if device.startswith("cuda") else 0.0, device=_device_name(device),
        verifier_version=VERIFIER_VERSION, torch_version=torch.__version__, config_sha256=sub.config_sha256,
        max_val_tokens=settings.max_val_tokens, chunks=len(result.chunks),
        family=result.family or prep.family.name, extra=dict(result.extra) or None,
    )
    outcomes = checks.run_score_rules(measured_bpb=measured.val_bpb, claimed_bpb=sub.claimed_val_bpb,
                                      tolerance=settings.bpb_tolerance, max_val_tokens=settings.max_val_tokens)
    state = lifecycle.finish_eval(settings, claim, measured, outcomes)
    if state is None:
        raise LostOwnership()
    log.info("scored val_bpb=%.6f in %.1fs on %s", measured.val_bpb, elapsed, measured.device)
    return state.value


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        try:
            return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
        except Exception:  # noqa: BLE001
            return device
    return device


def input_paths(settings: Settings, submission_id: str) -> dict[str, Path]:
    """Where a submission's files are stored (for `golfcheck status --files` and debugging)."""
    sub, files = _load(settings, submission_id)
    store = BlobStore(settings.blob_dir)
    return {f"{f.role}:{f.filename}": store.path(f.sha256) for f in files}
