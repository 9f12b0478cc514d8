"""The work behind the thin Celery tasks, as plain functions (no Celery import).

`run_stage(settings, submission_id, stage)` claims the stage (compare-and-set on the row), runs
it under a heartbeat thread, and writes the outcome through `api.core.lifecycle`, which fences every
write with the claimed attempt number. Errors are sorted by whose fault they are:

- `gepa.errors.InputError` → the submission is rejected with the error's one-line message;
- the heartbeat lost the row (a newer attempt took over) → stop quietly, write nothing;
- anything else → a platform fault: the stage is queued again, and fails after `max_attempts`.

The worker runs no rule code of its own: it writes the submission's stored files back into a
records folder (their submitted names) and calls `gepa.compliance.check_record` on it, the same
call `golfcheck check DIR` makes, then stores the results.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import posixpath
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from api.core import lifecycle
from api.core.db import session_scope
from api.core.lifecycle import Claim, Measured, RuleOutcome
from api.core.logsetup import bind
from api.core.models import Queue, Submission, SubmissionFile
from api.core.settings import Settings
import torch
from sqlalchemy import select

from api.core.storage import BlobStore
from gepa import families, runner
from gepa.compliance import check_record
from gepa.errors import InputError
from gepa.evaluate import EvaluationCancelled
from gepa.families.base import Family

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
    return "cuda" if torch.cuda.is_available() else "cpu"


class FamilyDataMissing(RuntimeError):
    """The server has no validation data for a submission's family (an operator fix, not the submitter's)."""


@dataclass(frozen=True)
class ValInputs:
    val_glob: str | None        # None: the family's bundled validation sample
    tokenizer: str | None       # None: the family's bundled tokenizer
    sidecar_glob: str | None    # a shipped byte sidecar, compared but never trusted (CaseOps)
    canonical_sha256: str | None  # fingerprint of the family's full canonical validation set; None: none
    # configured, so nothing scored for this family can be verified


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
        return ValInputs(settings.val_glob or None, settings.tokenizer or None, None,
                         settings.canonical_val_sha256 or None)
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


def _relative_names(files: list[SubmissionFile]) -> dict[int, str]:
    """Each stored file's path inside the records folder. The upload already dropped a bundle's
    single top folder (`api.http.uploads`), so stored names are folder-relative as they are."""
    return {f.id: f.filename.replace("\\", "/").lstrip("/") for f in files}


def folder_name(sub: Submission) -> str:
    """The records folder's name: the bundle's top folder, else `submission` (`golfcheck check`
    on a folder of that name gives the same results: a folder name can carry the date)."""
    name = (sub.folder or "").strip().replace("/", "_")
    return name if name not in ("", ".", "..") else "submission"


@contextmanager
def records_folder(settings: Settings, sub: Submission, files: list[SubmissionFile]) -> Iterator[tuple[Path, Path]]:
    """The submission's files as the records folder they came from, in a private temp dir:
    `<tmp>/<track>/<folder name>/...` (the track is read from the path as the CLI would).
    Yields (folder, artifact path). Only plain files with normalised names are written."""
    store = BlobStore(settings.blob_dir)
    with tempfile.TemporaryDirectory(prefix="golfcheck-check-") as tmp:
        folder = Path(tmp) / (sub.track or "track") / folder_name(sub)
        folder.mkdir(parents=True)
        names = _relative_names(files)
        artifact = None
        have_config = have_meta = False
        for f in files:
            rel = posixpath.normpath(names[f.id])
            if f.role == "bundle" or rel.startswith("..") or rel in (".", "") or posixpath.isabs(rel):
                continue
            if f.role in ("artifact", "code"):
                rel = posixpath.basename(rel)
            dest = folder / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if f.role == "artifact":
                dest.symlink_to(store.path(f.sha256).resolve())  # large: linked, never copied
                artifact = dest
                continue
            dest.write_bytes(store.read_bytes(f.sha256))
            have_config |= f.role == "config"
            have_meta |= f.role == "submission_json"
        if not have_config and sub.config_json and sub.config_json != "{}":
            (folder / "eval.json").write_text(sub.config_json)
        if not have_meta and sub.submission_json:
            (folder / "submission.json").write_text(sub.submission_json)
        if artifact is None:  # an older row without a file record: the artifact blob itself
            artifact = folder / "final_model.ptz"
            artifact.symlink_to(store.path(sub.artifact_sha256).resolve())
        yield folder, artifact


def run_engine(settings: Settings, sub: Submission, files: list[SubmissionFile], stage: str,
               measured: dict[str, Any] | None = None, canonical_val_sha256: str | None = None) -> Any:
    """`gepa.compliance.check_record` on the submission's records folder, for one stage.
    `canonical_val_sha256`: the canonical validation set of the submission's family (score stage)."""
    with records_folder(settings, sub, files) as (folder, artifact):
        return check_record(folder, artifact, measured=measured, track=sub.track, stages=[stage],
                            canonical_val_sha256=canonical_val_sha256,
                            cap_bytes=sub.cap_bytes, max_decompressed_bytes=settings.max_decompressed_bytes)


def _checks(settings: Settings, claim: Claim) -> str | None:
    sub, files = _load(settings, claim.submission_id)
    verdict = run_engine(settings, sub, files, "checks", canonical_val_sha256=settings.canonical_val_sha256 or None)
    outcomes = [RuleOutcome.from_result(r) for r in verdict.results]
    family = (verdict.facts["family"], verdict.facts["family_title"]) if verdict.facts.get("family") else None
    state = lifecycle.finish_checks(settings, claim, outcomes, counted_bytes=verdict.facts.get("counted_bytes"),
                                    family=family)
    if state is None:
        raise LostOwnership()
    return state.value


def _evaluate(settings: Settings, claim: Claim, hb: Heartbeat) -> str | None:
    sub, files = _load(settings, claim.submission_id)
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
        val_sha256=result.val_sha256 or None, val_tokens=int(result.val_tokens) or None,
        canonical_val_sha256=data.canonical_sha256,
    )
    verdict = run_engine(settings, sub, files, "score", measured={
        "val_bpb": measured.val_bpb, "val_loss": measured.val_loss, "val_sha256": measured.val_sha256,
        "val_tokens": measured.val_tokens, "tokens_scored": measured.tokens_scored,
        "total_targets": measured.total_targets, "bytes_scored": measured.bytes_scored,
        "unscored_targets": int(result.unscored_targets),
        "max_tokens": settings.max_val_tokens, "eval_seconds": elapsed, "hardware": measured.device},
        canonical_val_sha256=data.canonical_sha256)
    measured = dataclasses.replace(measured, coverage=verdict.facts.get("coverage"))
    outcomes = [RuleOutcome.from_result(r) for r in verdict.results]
    state = lifecycle.finish_eval(settings, claim, measured, outcomes, verdict=verdict.verdict)
    if state is None:
        raise LostOwnership()
    log.info("scored val_bpb=%.6f in %.1fs on %s", measured.val_bpb, elapsed, measured.device)
    return state.value


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        try:
            return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
        except Exception:  # noqa: BLE001
            return device
    return device


