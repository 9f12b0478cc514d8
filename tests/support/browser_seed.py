"""Seed a golfcheck database with what the browser tests (and the page benchmark) look at.

Rows are written through the service's own models (the tests do not run an evaluation; the brief
allows inserting a finished attempt directly). What gets seeded, all in the real schema:

- tokens: one reviewer, one submitter (`api.core.auth.create_token`);
- `published`: a submission that went through checks and a score-first evaluation, with files in
  blob storage (a real record folder's submission.json and train logs, a train_gpt.py, an artifact
  and a config), per-chunk records, a result, and rule results produced by the real compliance
  engine (`gepa.compliance.check_record`) on that folder: warnings only, so the verdict is pass
  and it is auto-published;
- `failing`: scored with a failing verdict (static review of its train_gpt.py finds network
  access at real line numbers), waiting for a reviewer;
- `running`: evaluating, part of its chunks done (tests add more with `add_chunks`).

The historical records themselves come from the service's ingest (`api.cli.service.ingest`).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.core.auth import create_token
from api.core.crud import dedupe_key
from api.core.db import session_scope, utcnow
from api.core.models import (
    Attempt,
    AuditLog,
    Blob,
    ChunkRecordRow,
    Result,
    Role,
    RuleResult,
    State,
    StateTransition,
    Submission,
    SubmissionFile,
)
from api.core.settings import Settings
from api.core.storage import BlobStore
from api.core.intake import sha256_text
from tests.support.paths import RECORDS, TESTS
from gepa.compliance import check_record, scan_code

SAMPLE_SCRIPTS = TESTS / "browser"  # the two train_gpt.py samples the seeded submissions ship
BASE_RECORD = RECORDS / "track_10min_16mb" / "2026-03-17_NaiveBaseline"
CONFIG = {"eval": {"mode": "ttt", "seq_len": 1024, "stride": 64, "batch_seqs": 32},
          "ttt": {"epochs": 1, "chunk_tokens": 32768, "freeze_blocks": 0, "batch_seqs": 32}}
WORKER = "gpu-node-3.golfcheck.internal"


@dataclass(frozen=True)
class Seeded:
    reviewer_token: str
    submitter_token: str
    published_id: str
    failing_id: str
    running_id: str


def _blob(session: Any, store: BlobStore, data: bytes) -> tuple[str, int]:
    b = store.put_bytes(data)
    if session.get(Blob, b.sha256) is None:
        session.add(Blob(sha256=b.sha256, size=b.size, path=b.rel_path))
        session.flush()
    return b.sha256, b.size


def _history(session: Any, sid: str, steps: list[tuple[str | None, str, int, str]], start: dt.datetime) -> None:
    at = start
    for frm, to, attempt, actor in steps:
        session.add(StateTransition(submission_id=sid, from_state=frm, to_state=to, attempt=attempt, actor=actor, at=at))
        session.add(AuditLog(actor=actor, action=f"state.{to}", submission_id=sid, attempt=attempt, at=at,
                             details=json.dumps({"from": frm})))
        at += dt.timedelta(seconds=7)


def _rules_from_verdict(verdict: Any) -> list[dict[str, Any]]:
    """gepa.compliance results as the worker stores them (see worker/checks.py `_adapt`)."""
    return [{"rule": r.rule, "status": r.status, "message": r.summary, "title": r.description,
             "evidence": r.to_dict()["evidence"] or None} for r in verdict.results]


def _chunks(n: int, final_bpb: float, seed: int) -> list[dict[str, float]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        # Running BPB settles towards the final value as more text is scored.
        bpb = final_bpb + 0.09 * (0.82 ** i) + rng.uniform(-0.002, 0.002) * (0.9 ** i)
        out.append({"windows": 512, "tokens_scored": 32768, "bytes_scored": 78000 + rng.randint(-900, 900),
                    "score_seconds": 0.9 + rng.uniform(0, 0.4), "train_seconds": 2.1 + rng.uniform(-0.3, 0.3),
                    "running_bpb": bpb if i < n - 1 else final_bpb, "running_loss": bpb * 1.6})
    return out


def _add_submission(session: Any, store: BlobStore, settings: Settings, *, submitter_id: int, name: str,
                    author: str, code: bytes, folder: Path | None, claimed: float | None, created: dt.datetime,
                    artifact_size: int) -> Submission:
    art_sha, art_size = _blob(session, store, random.Random(name).randbytes(artifact_size))
    code_sha, code_size = _blob(session, store, code)
    config_text = json.dumps(CONFIG, sort_keys=True, separators=(",", ":"))
    cfg_sha, cfg_size = _blob(session, store, config_text.encode())
    sid = str(uuid.uuid4())
    sub_json = (folder / "submission.json").read_text() if folder else None
    sub = Submission(
        id=sid, submitter_id=submitter_id, state=State.RECEIVED.value, attempt=0, stage_failures=0,
        created_at=created, updated_at=created, artifact_sha256=art_sha, code_sha256=code_sha,
        config_json=config_text, config_sha256=sha256_text(config_text),
        dedupe_key=dedupe_key(art_sha, code_sha, sha256_text(config_text)), submission_json=sub_json,
        track="track_10min_16mb", name=name, author=author, folder=folder.name if folder else None,
        claimed_val_bpb=claimed, artifact_bytes=art_size, code_bytes=code_size,
        counted_bytes=art_size + code_size, cap_bytes=settings.cap_bytes, verdict="pending", chunks_done=0,
        flagged=False, disqualified=False)
    session.add(sub)
    session.flush()
    files = [("artifact", "final_model.int8.ptz", art_sha, art_size), ("code", "train_gpt.py", code_sha, code_size),
             ("config", "config.json", cfg_sha, cfg_size)]
    if folder is not None:
        for p in sorted(folder.iterdir()):
            if p.is_file():
                sha, size = _blob(session, store, p.read_bytes())
                files.append(("submission_json" if p.name == "submission.json" else "log", p.name, sha, size))
    for role, fname, sha, size in files:
        session.add(SubmissionFile(submission_id=sid, role=role, filename=fname, sha256=sha, size=size))
    return sub


def _store_rules(session: Any, sid: str, attempt: int, stage: str, rules: list[dict[str, Any]]) -> None:
    for r in rules:
        session.add(RuleResult(submission_id=sid, attempt=attempt, stage=stage, rule=r["rule"], title=r.get("title"),
                               status=r["status"], message=r.get("message"),
                               evidence=json.dumps(r["evidence"]) if r.get("evidence") is not None else None))


CANONICAL_SHA = "5d5ac9b83e9b116d32176c6d9889d3d7649e7128bbf88c2fe04b51a4110b318f"


def _measured_rules(measured: float, claimed: float) -> list[dict[str, Any]]:
    """The score-stage rules as the engine words them for a full, reproduced run."""
    return [{"rule": "data.canonical", "status": "pass", "title": "the measured result scored the full canonical "
             "validation set", "message": "the full canonical validation set was scored",
             "evidence": [{"message": "validation shards sha256", "value": CANONICAL_SHA, "limit": CANONICAL_SHA}]},
            {"rule": "repro.bpb", "status": "pass", "title": "measured BPB within max(0.0015, 3 sigma of reported seeds) "
             "of the claim", "message": f"reproduced within 0.001500 ({measured - claimed:+.6f})",
             "evidence": [{"message": "measured val_bpb vs claimed", "value": measured, "limit": claimed}]}]


def _finish(session: Any, sub: Submission, *, final_bpb: float, checks: list[dict[str, Any]],
            score: list[dict[str, Any]], n_chunks: int, start: dt.datetime, publish: bool) -> None:
    verdict = "fail" if any(r["status"] == "fail" for r in checks + score) else "pass"
    sid = sub.id
    steps = [(None, "received", 0, "user:alice"), ("received", "queued", 0, "user:alice"),
             ("queued", "checking", 1, "worker:cpu-1"), ("checking", "queued", 1, "worker:cpu-1"),
             ("queued", "evaluating", 2, f"worker:{WORKER}"), ("evaluating", "scored", 2, f"worker:{WORKER}")]
    if publish:
        steps.append(("scored", "published", 2, "system:auto-publish"))
    _history(session, sid, steps, start)
    session.add(Attempt(submission_id=sid, number=1, stage="checks", outcome="succeeded", worker="cpu-1",
                        started_at=start + dt.timedelta(seconds=14), finished_at=start + dt.timedelta(seconds=20),
                        heartbeat_at=start + dt.timedelta(seconds=20)))
    eval_start = start + dt.timedelta(seconds=28)
    session.add(Attempt(submission_id=sid, number=2, stage="eval", outcome="succeeded", worker=WORKER,
                        device="cuda:0 (NVIDIA H100 80GB HBM3)", started_at=eval_start,
                        finished_at=eval_start + dt.timedelta(seconds=95), heartbeat_at=eval_start + dt.timedelta(seconds=95)))
    _store_rules(session, sid, 1, "checks", checks)
    for i, c in enumerate(_chunks(n_chunks, final_bpb, seed=len(sid))):
        session.add(ChunkRecordRow(submission_id=sid, attempt=2, chunk_index=i, lr=0.001,
                                   created_at=eval_start + dt.timedelta(seconds=3 * i + 3), **c))
    res = Result(submission_id=sid, attempt=2, mode="ttt", val_loss=final_bpb * 1.6, val_bpb=final_bpb,
                 tokens_scored=32768 * n_chunks, bytes_scored=78000 * n_chunks, total_targets=32768 * n_chunks,
                 elapsed_s=95.0, gpu_seconds=95.0, device="cuda:0 (NVIDIA H100 80GB HBM3)", verifier_version="0.1.0",
                 torch_version="2.13.0", config_sha256=sub.config_sha256, max_val_tokens=None,
                 # Scored on the whole canonical validation set: the only kind of result that is verified.
                 val_sha256=CANONICAL_SHA, canonical_val_sha256=CANONICAL_SHA, val_tokens=32768 * n_chunks + 1,
                 canonical_bytes=78000 * n_chunks, coverage="full")
    session.add(res)
    session.flush()
    _store_rules(session, sid, 2, "score", score)
    sub.state = State.PUBLISHED.value if publish else State.SCORED.value
    sub.attempt, sub.result_id, sub.verdict = 2, res.id, verdict
    sub.measured_val_bpb, sub.measured_val_loss = final_bpb, final_bpb * 1.6
    sub.chunks_done = sub.chunks_total = n_chunks
    sub.eval_started_at, sub.worker = eval_start, WORKER
    sub.updated_at = eval_start + dt.timedelta(seconds=95)


def seed(settings: Settings) -> Seeded:
    store = BlobStore(settings.blob_dir)
    clean = (SAMPLE_SCRIPTS / "train_gpt_clean.py.txt").read_bytes()
    network = (SAMPLE_SCRIPTS / "train_gpt_network.py.txt").read_bytes()
    now = utcnow()
    with session_scope(settings) as session:
        reviewer, _, reviewer_token = create_token(session, name="rita-reviewer", role=Role.REVIEWER)
        submitter, _, submitter_token = create_token(session, name="alice", role=Role.SUBMITTER)

        # The published one: a real record folder plus train_gpt.py and README, checked for real.
        tmp = Path(tempfile.mkdtemp(prefix="golfcheck-seed-")) / BASE_RECORD.name
        shutil.copytree(BASE_RECORD, tmp)
        (tmp / "train_gpt.py").write_bytes(clean)
        (tmp / "README.md").write_text("# Naive baseline\n\nThe challenge's starting point.\n")
        claimed = json.loads((tmp / "submission.json").read_text()).get("val_bpb")
        pub = _add_submission(session, store, settings, submitter_id=submitter.id, name="Naive baseline, re-verified",
                              author="Alice Example", code=clean, folder=tmp, claimed=claimed,
                              created=now - dt.timedelta(hours=5), artifact_size=420_000)
        checks = _rules_from_verdict(check_record(tmp, stages=["checks"]))
        score = _measured_rules(claimed + 0.0004, claimed)
        _finish(session, pub, final_bpb=claimed + 0.0004, checks=checks, score=score, n_chunks=24,
                start=now - dt.timedelta(hours=5), publish=True)
        shutil.rmtree(tmp.parent, ignore_errors=True)

        # Scored with a failing verdict: static review finds network access (real line numbers).
        fail = _add_submission(session, store, settings, submitter_id=submitter.id, name="Sliding window + downloads",
                               author="Alice Example", code=network, folder=None, claimed=1.19,
                               created=now - dt.timedelta(hours=26), artifact_size=300_000)
        report = scan_code(network.decode())
        net = [f.to_dict() for f in report.findings if f.rule == "code.network"]
        checks = [{"rule": "size.cap", "status": "pass", "title": "Code + artifact within the cap",
                   "message": f"{fail.counted_bytes} bytes <= {settings.cap_bytes}",
                   "evidence": {"artifact_bytes": fail.artifact_bytes, "code_bytes": fail.code_bytes,
                                "total_bytes": fail.counted_bytes, "cap_bytes": settings.cap_bytes}},
                  {"rule": "artifact.integrity", "status": "pass", "title": "Artifact decodes and matches the config",
                   "message": "artifact decodes and matches the model config"},
                  {"rule": "code.network", "status": "fail", "title": "The code can reach the network",
                   "message": f"{len(net)} network access site(s) in train_gpt.py",
                   "evidence": [{"file": f["file"], "line": f["line"], "message": f["message"]} for f in net]}]
        score = _measured_rules(1.1905, 1.19)
        _finish(session, fail, final_bpb=1.1905, checks=checks, score=score, n_chunks=30,
                start=now - dt.timedelta(hours=26), publish=False)

        # Evaluating right now: 10 of 40 chunks done.
        run = _add_submission(session, store, settings, submitter_id=submitter.id, name="Long context TTT (running)",
                              author="Alice Example", code=clean + b"\n# v2\n", folder=None, claimed=1.17,
                              created=now - dt.timedelta(minutes=40), artifact_size=500_000)
        _history(session, run.id, [(None, "received", 0, "user:alice"), ("received", "queued", 0, "user:alice"),
                                   ("queued", "checking", 1, "worker:cpu-1"), ("checking", "queued", 1, "worker:cpu-1"),
                                   ("queued", "evaluating", 2, f"worker:{WORKER}")], now - dt.timedelta(minutes=40))
        session.add(Attempt(submission_id=run.id, number=1, stage="checks", outcome="succeeded", worker="cpu-1",
                            started_at=now - dt.timedelta(minutes=39), finished_at=now - dt.timedelta(minutes=38)))
        session.add(Attempt(submission_id=run.id, number=2, stage="eval", outcome="running", worker=WORKER,
                            device="cuda:0", started_at=now - dt.timedelta(seconds=30), heartbeat_at=now))
        run.state, run.attempt, run.queue, run.worker = State.EVALUATING.value, 2, "eval", WORKER
        run.eval_started_at, run.heartbeat_at, run.chunks_total = now - dt.timedelta(seconds=30), now, 40
        session.flush()
        ids = (pub.id, fail.id, run.id)
    add_chunks(settings, ids[2], 10)
    return Seeded(reviewer_token, submitter_token, *ids)


def add_chunks(settings: Settings, submission_id: str, upto: int) -> None:
    """Append chunk records to the running submission's attempt, as the worker would."""
    rows = _chunks(40, 1.17, seed=7)
    with session_scope(settings) as session:
        sub = session.get(Submission, submission_id)
        assert sub is not None
        for i in range(sub.chunks_done, min(upto, len(rows))):
            session.add(ChunkRecordRow(submission_id=sub.id, attempt=sub.attempt, chunk_index=i, lr=0.001, **rows[i]))
        sub.chunks_done = max(sub.chunks_done, min(upto, len(rows)))
        sub.heartbeat_at = utcnow()
