"""Rules: each a small function of a `RuleContext`, registered in `RULES` in run order.

Every result carries evidence (file, line, value seen, limit). Rules that need an input the
context does not have (an artifact, a measured result, the current best's seeds, code to
review) return `skip` with the reason, so the same rule set runs in the CLI on a bare records
folder and in the worker with measurements. `checks`-stage rules look at files only; the
`score`-stage rules (`data.canonical`, `repro.bpb`) judge a measured result.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gepa.compliance import policy
from gepa.compliance.engine import FAIL, PASS, SKIP, STAGE_SCORE, WARN, Evidence, Rule, result
from gepa.compliance.logs import ParsedLog
from gepa.compliance.record import Record
from gepa.compliance.review import CODE_RULES, RULE_TEXT, ScanReport, severity
from gepa.compliance.significance import bytes_per_token, record_significance
from gepa.compliance.submission import Submission
from gepa import families
from gepa.errors import ArtifactError, InputError
from gepa.sizes import SIZE_CAP_BYTES, size_report


@dataclass
class RuleContext:
    """Everything a rule may look at. Only `record` is required.

    measured: a result the evaluator produced, e.g. {"val_bpb": 1.0812, "eval_seconds": 410.0,
              "hardware": "8xH100", "val_sha256": "...", "val_tokens": N, "tokens_scored": N,
              "total_targets": N, "unscored_targets": 0, "bytes_scored": N, "max_tokens": None}.
    canonical_val_sha256: the fingerprint of the canonical validation shards (the service's
              configuration); a measured result on anything else is never verified.
    current_best: the entry a record claim must beat, e.g. {"seed_bpbs": [...],
              "bytes_per_token": 3.7} (bytes_per_token optional).
    """

    record: Record
    code_sources: dict[str, str] = field(default_factory=dict)  # file name -> text (entry + helpers)
    scan: ScanReport | None = None
    artifact: Path | None = None
    config_path: Path | None = None
    measured: dict[str, Any] | None = None
    current_best: dict[str, Any] | None = None
    # A copy of an already-published record whose code was left out of the copy (ingest of the
    # challenge's history): a missing train_gpt.py/README.md says nothing about the submission.
    historical: bool = False
    canonical_val_sha256: str | None = None
    cap_bytes: int | None = None               # None: the challenge's cap (gepa.sizes)
    max_decompressed_bytes: int | None = None  # the artifact reader's inflation cap (None: codec default)
    entry: str = "train_gpt.py"                # the script that runs (reviewed first, counted as code)
    facts: dict[str, Any] = field(default_factory=dict)  # numbers the service stores with the verdict
    _prep: Any = None

    def prepared(self) -> tuple[Any, Exception | None]:
        """The artifact decoded and checked against the config once (shared by two rules)."""
        if self._prep is None:
            from gepa import runner  # here: runner loads torch, and the API imports these rules without it
            cap = self.max_decompressed_bytes or policy.MAX_ARTIFACT_DECOMPRESSED_BYTES
            try:
                self._prep = (runner.prepare(self.artifact, str(self.config_path) if self.config_path else None,
                                             max_decompressed_bytes=cap), None)
            except InputError as exc:
                self._prep = (None, exc)
        return self._prep

    @property
    def sub(self) -> Submission:
        return self.record.submission

    @property
    def folder(self) -> Path:
        return self.record.folder

    @property
    def is_record_track(self) -> bool:
        return self.sub.track == policy.TRACK_RECORD

    @property
    def json_name(self) -> str:
        return self.sub.json_file or "submission.json"


def size_cap() -> int:
    return int(SIZE_CAP_BYTES)  # owned by the size-accounting module


# ----------------------------------------------------------------------------- files & schema

def rule_required_files(ctx: RuleContext):
    files = set(ctx.record.files)
    ev, missing = [], []
    for name in policy.REQUIRED_FILES:
        if name in files or (name == "train_gpt.py" and ctx.entry in files):
            continue
        if name == "submission.json" and ctx.sub.json_file:
            ev.append(Evidence(f"metadata is in {ctx.sub.json_file}, not submission.json", file=ctx.sub.json_file))
            continue
        missing.append(name)
        ev.append(Evidence(f"{name} is missing", file=name))
    logs = [lg.file for lg in ctx.record.logs]
    if not logs:
        missing.append("train log")
        ev.append(Evidence("no train log (*.log / *.txt) in the folder"))
    bad = FAIL if ctx.is_record_track else WARN
    if missing and ctx.historical and set(missing) <= set(policy.HISTORICAL_OPTIONAL_FILES):
        return result(WARN, f"not in this copy of the published record: {', '.join(missing)}", ev)
    # The README documents a record; its absence alone does not make a number false.
    if missing and bad == FAIL and set(missing) <= set(policy.DOCUMENTATION_FILES):
        return result(WARN, f"missing: {', '.join(missing)} (a record needs it before it is merged)", ev)
    if missing:
        return result(bad, f"missing: {', '.join(missing)}", ev, kind="missing-files")
    seeded = [lg for lg in ctx.record.seed_logs().values() if lg is not None]
    if ctx.is_record_track and len(set(id(x) for x in seeded)) < policy.MIN_RECORD_SEEDS:
        ev.append(Evidence(f"{len(seeded)} seed log(s) matched; records normally show {policy.MIN_RECORD_SEEDS}",
                           value=len(seeded), limit=policy.MIN_RECORD_SEEDS))
        return result(WARN, "fewer seed logs than a record claim usually needs", ev)
    if ev:  # only the renamed-metadata note can remain here
        return result(WARN, "metadata file has a non-standard name", ev)
    return result(PASS, f"required files present ({len(logs)} log(s))", [Evidence("logs", value=logs)])


def rule_schema(ctx: RuleContext):
    s = ctx.sub
    ev = [Evidence(p, file=ctx.json_name) for p in s.problems] + [Evidence(f"normalised: {n}", file=ctx.json_name) for n in s.notes]
    if any("no submission.json" in p for p in s.problems):
        # Nothing claimed: the artifact can still be measured, but the number is never verified.
        return result(WARN, "no submission.json: nothing is claimed, so a measured result cannot be verified", ev)
    hard = [p for p in s.problems if "not valid JSON" in p or "val_bpb is missing" in p or "not a JSON object" in p]
    if hard:
        return result(FAIL, hard[0], ev, kind="bad-submission-json")
    if s.problems:
        return result(WARN, f"{len(s.problems)} schema problem(s): {s.problems[0]}", ev)
    return result(PASS, f"valid after normalisation (track {s.track}, {len(s.seeds)} seed(s))", ev)


# ----------------------------------------------------------------------------- size

def _logged_totals(ctx: RuleContext) -> list[tuple[ParsedLog, int]]:
    return [(lg, lg.total_bytes) for lg in ctx.record.result_logs() if lg.total_bytes is not None]


def rule_size_cap(ctx: RuleContext):
    cap = ctx.cap_bytes or size_cap()
    ev: list[Evidence] = []
    seen: list[int] = []
    for lg, total in _logged_totals(ctx):
        seen.append(total)
        ev.append(Evidence("logged total submission size", file=lg.file, line=lg.total_line, value=total, limit=cap))
    if ctx.sub.bytes_total is not None:
        seen.append(ctx.sub.bytes_total)
        ev.append(Evidence("bytes_total (max over seeds)", file=ctx.json_name, value=ctx.sub.bytes_total, limit=cap))
    measured_total = None
    if ctx.artifact is not None and ctx.artifact.is_file():
        code_bytes = counted_code_bytes(ctx)
        rep = size_report(b"", ctx.artifact.stat().st_size, cap=cap)
        measured_total = rep.artifact_bytes + code_bytes
        ctx.facts["counted_bytes"] = measured_total
        ctx.facts["code_bytes"] = code_bytes
        seen.append(measured_total)
        ev.append(Evidence(f"code bytes ({code_bytes:,}) + artifact bytes ({rep.artifact_bytes:,}), measured",
                           file=ctx.artifact.name, value=measured_total, limit=cap))
    if not seen:
        return result(SKIP, "no size information (no logged total, no bytes_total, no artifact)")
    worst = max(seen)
    if worst > cap:
        what = ("the measured code + artifact" if measured_total is not None and measured_total > cap
                else "a logged or reported total")
        return result(FAIL, f"{worst:,} bytes ({what}) exceeds the {cap:,}-byte cap by {worst - cap:,}",
                      [e for e in ev if (e.value or 0) > cap] + ev, kind="over-cap")
    return result(PASS, f"max {worst:,} bytes <= {cap:,} (headroom {cap - worst:,})", ev)


def rule_code_size(ctx: RuleContext):
    """Logged code size vs the shipped file and vs submission.json's bytes_code."""
    ev, bad = [], False
    shipped = ctx.code_sources.get(ctx.entry)
    shipped_bytes = len(shipped.encode("utf-8")) if shipped is not None else None
    logged = [(lg, lg.code_bytes, lg.code_bytes_raw) for lg in ctx.record.result_logs() if lg.code_bytes is not None]
    if shipped_bytes is None and not logged:
        return result(SKIP, "no train_gpt.py and no logged code size to compare")
    for lg, counted, raw in logged:
        ok = shipped_bytes is None or shipped_bytes in (counted, raw)
        ev.append(Evidence("logged code size" + ("" if ok else " differs from the shipped train_gpt.py"),
                           file=lg.file, line=lg.code_line, value=counted, limit=shipped_bytes))
        bad |= not ok
    if ctx.sub.bytes_code is not None and logged and ctx.sub.bytes_code not in {c for _, c, _ in logged} | {r for _, _, r in logged}:
        ev.append(Evidence("bytes_code does not match any logged code size", file=ctx.json_name, value=ctx.sub.bytes_code))
        bad = True
    if bad:
        return result(WARN, "the code that produced the logs is not byte-identical to what was submitted", ev)
    return result(PASS, "logged code size matches the submitted code" if shipped_bytes is not None else "logged code sizes consistent", ev)


# ----------------------------------------------------------------------------- artifact & config

def rule_artifact(ctx: RuleContext):
    if ctx.artifact is None:
        return result(SKIP, "no artifact given")
    prep, err = ctx.prepared()
    if isinstance(err, ArtifactError):
        return result(FAIL, err.message, [Evidence(err.message, file=ctx.artifact.name)], kind=err.kind)
    if err is not None:
        return result(SKIP, "not checked: the config is not legal")
    art = prep.artifact
    # The family travels with the submission (service: submission JSON, reviewer page, board).
    ctx.facts["family"], ctx.facts["family_title"] = prep.family.name, prep.family.title
    return result(PASS, f"artifact decodes and matches the model config ({prep.family.name} family, {art.format}, "
                        f"{art.compression}, {art.compressed_bytes:,} bytes)",
                  [Evidence("compressed artifact bytes", file=ctx.artifact.name, value=art.compressed_bytes)])


def rule_config(ctx: RuleContext):
    path = ctx.config_path
    name = path.name if path is not None else None
    if ctx.artifact is not None:
        prep, err = ctx.prepared()
        if isinstance(err, ArtifactError):
            return result(SKIP, "not checked: the artifact could not be read")
        if err is not None:
            return result(FAIL, err.message, [Evidence(err.message, file=name)], kind=err.kind)
        how = f"config {name}" if name else "no config: inferred from the artifact"
        return result(PASS, f"{prep.family.name} family, evaluation mode {prep.cfg.mode} ({how})",
                      [Evidence("evaluation mode", file=name, value=prep.cfg.mode)])
    if path is None:
        return result(SKIP, "no evaluation config in the folder")
    from gepa import runner  # here: runner loads torch, and the API imports these rules without it
    try:
        raw = runner.read_config(path)
        cfg = families.family_of(raw, None).parse_config(raw)
    except InputError as exc:
        return result(FAIL, f"config rejected: {exc.message}", [Evidence(exc.message, file=name)], kind=exc.kind)
    return result(PASS, f"config is legal (mode {cfg.mode})", [Evidence("evaluation mode", file=name, value=cfg.mode)])


def counted_code_bytes(ctx: RuleContext) -> int:
    """Bytes of the code shipped: every code file of the folder (the entry script, helper modules,
    native sources and libraries), as stored; a helper module is not free."""
    if ctx.scan is not None and ctx.scan.code_files:
        return ctx.scan.code_bytes
    return sum(len(t.encode("utf-8", "replace")) for t in ctx.code_sources.values())


# ----------------------------------------------------------------------------- json <-> logs

def rule_final_metric(ctx: RuleContext):
    s, ev = ctx.sub, []
    if not ctx.record.logs:
        return result(SKIP, "no logs to compare against")
    claims = [(seed, r.val_bpb) for seed, r in s.seed_results.items() if r.val_bpb is not None]
    if claims:
        bad = missing = 0
        seed_logs = ctx.record.seed_logs()
        for seed, bpb in claims:
            lg = seed_logs.get(seed)
            if lg is None:
                missing += 1
                ev.append(Evidence(f"no log for seed {seed}", value=bpb))
                continue
            m = lg.find_bpb(bpb)
            if m is None:
                bad += 1
                last = lg.final_metrics[-1] if lg.final_metrics else None
                ev.append(Evidence(f"seed {seed}: claimed val_bpb not among the log's final metric lines",
                                   file=lg.file, line=last.line if last else None, value=bpb, limit=last.val_bpb if last else None))
            else:
                ev.append(Evidence(f"seed {seed}: `{m.label}` reports it", file=lg.file, line=m.line, value=bpb, limit=m.val_bpb))
        if bad:
            return result(FAIL, f"{bad} seed result(s) not supported by their logs", ev)
        if missing:
            return result(WARN, f"{missing} reported seed(s) have no log", ev)
        return result(PASS, f"all {len(claims)} seed results appear in their logs", ev)
    if s.val_bpb is None:
        return result(SKIP, "no val_bpb claim")
    hits = [(lg, lg.find_bpb(s.val_bpb)) for lg in ctx.record.logs]
    hits = [(lg, m) for lg, m in hits if m]
    if hits:
        lg, m = hits[-1]
        return result(PASS, f"val_bpb {s.val_bpb} reported by `{m.label}`", [Evidence("final metric line", file=lg.file, line=m.line, value=s.val_bpb, limit=m.val_bpb)])
    finals = [lg.final_metrics[-1] for lg in ctx.record.logs if lg.final_metrics]
    if len(finals) > 1:
        for k in range(len(finals), 1, -1):  # a mean over the last k runs' final numbers
            mean = statistics.fmean(m.val_bpb for m in finals[-k:])
            if abs(mean - s.val_bpb) <= policy.MEAN_MATCH_TOL:
                return result(PASS, f"val_bpb {s.val_bpb} is the mean of {k} logged runs", [Evidence("mean of final metric lines", value=s.val_bpb, limit=round(mean, 8))])
    ev = [Evidence("last final metric", file=lg.file, line=lg.final_metrics[-1].line, value=s.val_bpb, limit=lg.final_metrics[-1].val_bpb)
          for lg in ctx.record.logs if lg.final_metrics]
    unlogged = [seed for seed, lg in ctx.record.seed_logs().items() if lg is None]
    if unlogged:
        ev.append(Evidence(f"no log for reported seed(s) {', '.join(unlogged)}", value=s.seeds))
        return result(WARN, f"val_bpb {s.val_bpb} cannot be verified: seeds {', '.join(unlogged)} have no log", ev)
    if not ev:
        return result(WARN, "logs contain no final metric line", [Evidence("no final val_bpb line found", value=s.val_bpb)])
    return result(FAIL, f"val_bpb {s.val_bpb} appears in no log's final metric lines", ev)


def rule_mean(ctx: RuleContext):
    s = ctx.sub
    vals = s.seed_bpbs
    if len(vals) < 2 or s.val_bpb is None:
        return result(SKIP, "fewer than two per-seed results")
    mean = statistics.fmean(vals)
    ev = [Evidence("reported val_bpb vs mean over seed_results", file=ctx.json_name, value=s.val_bpb, limit=round(mean, 8))]
    if s.val_bpb_std is not None:
        sd = statistics.stdev(vals)
        ev.append(Evidence("val_bpb_std vs sample std of seeds", file=ctx.json_name, value=s.val_bpb_std, limit=round(sd, 8)))
    if abs(mean - s.val_bpb) > policy.MEAN_MATCH_TOL:
        best = min(vals)
        why = " (it is the best seed, not the mean)" if abs(best - s.val_bpb) <= 1e-6 else ""
        return result(FAIL, f"val_bpb {s.val_bpb} != mean of {len(vals)} seeds {mean:.6f}{why}", ev)
    return result(PASS, f"val_bpb is the mean of {len(vals)} seeds", ev)


def rule_artifact_size_log(ctx: RuleContext):
    s, ev, under = ctx.sub, [], False
    seed_logs = ctx.record.seed_logs()
    for seed, r in s.seed_results.items():
        lg = seed_logs.get(seed)
        if r.artifact_bytes is None or lg is None or lg.total_bytes is None:
            continue
        ok = r.artifact_bytes == lg.total_bytes
        ev.append(Evidence(f"seed {seed} artifact_bytes vs logged total", file=lg.file, line=lg.total_line, value=r.artifact_bytes, limit=lg.total_bytes))
        under |= not ok and r.artifact_bytes < lg.total_bytes
    totals = [t for _, t in _logged_totals(ctx)]
    head = ctx.record.headline_log()
    not_max = False
    if s.bytes_total is not None and s.seed_results and totals:
        ev.append(Evidence("bytes_total vs max logged total over seeds", file=ctx.json_name, value=s.bytes_total, limit=max(totals)))
        under |= s.bytes_total < max(totals)
    elif s.bytes_total is not None and head is not None and head.total_bytes is not None:
        # Without per-seed results, bytes_total describes the headline run.
        ev.append(Evidence("bytes_total vs the headline run's logged total", file=head.file, line=head.total_line,
                           value=s.bytes_total, limit=head.total_bytes))
        under |= s.bytes_total < head.total_bytes
        if totals and max(totals) > s.bytes_total:
            not_max = True
            ev.append(Evidence("bytes_total is not the max over the folder's runs", file=ctx.json_name, value=s.bytes_total, limit=max(totals)))
    if not ev:
        return result(SKIP, "no logged sizes to compare")
    if under:
        return result(FAIL, "submission.json reports fewer bytes than the logs", ev)
    if not_max:
        return result(WARN, "bytes_total matches the headline run but not the largest run in the folder", ev)
    if any(e.value != e.limit for e in ev):
        return result(WARN, "submission.json sizes differ from the logs (not smaller)", ev)
    return result(PASS, "artifact sizes match the logs", ev)


# ----------------------------------------------------------------------------- seeds

def rule_seeds_unique(ctx: RuleContext):
    seeds = ctx.sub.seeds
    if not seeds:
        return result(SKIP, "no seeds reported")
    dup = sorted({x for x in seeds if seeds.count(x) > 1})
    if dup:
        return result(FAIL, f"seed(s) reported more than once: {', '.join(dup)}", [Evidence("duplicate seed", file=ctx.json_name, value=d) for d in dup])
    ev = []
    for seed, lg in ctx.record.seed_logs().items():
        if lg is not None and lg.seed and lg.seed != seed:
            ev.append(Evidence(f"log for seed {seed} records seed {lg.seed}", file=lg.file, value=lg.seed, limit=seed))
    if ev:
        return result(WARN, "a log's recorded seed disagrees with the reported seed", ev)
    return result(PASS, f"{len(seeds)} distinct seed(s)", [Evidence("seeds", file=ctx.json_name, value=seeds)])


def rule_config_identical(ctx: RuleContext):
    logs = [lg for lg in ctx.record.seed_logs().values() if lg is not None and lg.hyperparams]
    logs = list({id(x): x for x in logs}.values())
    if len(logs) < 2:
        return result(SKIP, "fewer than two seed logs with a hyperparameter dump")
    ref = logs[0]
    ignore = set(policy.PER_RUN_KEYS)
    ev = []
    for lg in logs[1:]:
        keys = (set(ref.hyperparams) & set(lg.hyperparams)) - ignore
        for k in sorted(keys):
            if ref.hyperparams[k] != lg.hyperparams[k] and not _path_like(ref.hyperparams[k]):
                ev.append(Evidence(f"`{k}` differs from {ref.file}", file=lg.file, value=lg.hyperparams[k], limit=ref.hyperparams[k]))
    if ev:
        return result(FAIL, f"{len(ev)} hyperparameter(s) differ between seeds: {', '.join(sorted({e.message.split('`')[1] for e in ev}))}", ev)
    return result(PASS, f"{len(logs)} seed logs share one configuration", [])


def _path_like(v: str) -> bool:
    return "/" in v or v.endswith((".txt", ".log", ".pt", ".ptz", ".model", ".bin"))


# ----------------------------------------------------------------------------- reproduction & time

def coverage(ctx: RuleContext) -> tuple[str, str]:
    """(label, why) of a measured result's validation data: `full` (the whole canonical set),
    `demo` (cut by max_val_tokens / --max-tokens), `partial` (the evaluation's window rule left
    targets unscored) or `non-canonical` (another set, or none configured)."""
    m = ctx.measured or {}
    if m.get("max_tokens") is not None:
        return "demo", f"validation cut to the first {int(m['max_tokens']):,} targets (demo setting)"
    gaps = int(m.get("unscored_targets") or 0)
    if gaps > 0:
        # Targets skipped inside the stream (a window rule with gaps) are part of the set that was
        # not measured: the number describes a subset, whatever the shards' fingerprint.
        return "partial", (f"{gaps:,} of {int(m.get('total_targets') or 0):,} targets were never scored "
                           "(the evaluation's window rule leaves them out)")
    sha = m.get("val_sha256")
    if not ctx.canonical_val_sha256:
        return "non-canonical", "no canonical validation set is configured on this verifier"
    if sha != ctx.canonical_val_sha256:
        return "non-canonical", f"validation shards sha256 {str(sha)[:16]}… are not the canonical {ctx.canonical_val_sha256[:16]}…"
    # No cut, no gap and the canonical shards: the evaluator scored the whole set the way the
    # family's reference does (some references drop a tail shorter than one sequence or one batch,
    # the same for every submission of the family; that is the metric, not a gap).
    return "full", "the full canonical validation set was scored"


def rule_data_canonical(ctx: RuleContext):
    m = ctx.measured or {}
    if m.get("val_bpb") is None:
        return result(SKIP, "no measured result")
    label, why = coverage(ctx)
    ctx.facts["coverage"] = label
    ev = [Evidence("validation shards sha256", value=m.get("val_sha256"), limit=ctx.canonical_val_sha256),
          Evidence("targets scored vs targets in the validation stream", value=m.get("tokens_scored"), limit=m.get("total_targets")),
          Evidence("bytes scored", value=m.get("bytes_scored")),
          Evidence("tokens in the validation shards", value=m.get("val_tokens"))]
    if m.get("max_tokens") is not None:
        ev.append(Evidence("max_val_tokens (demo cut)", value=m.get("max_tokens")))
    if label == "full":
        return result(PASS, why, ev)
    # Not the submitter's fault, so not a failure; but such a number is never verified.
    return result(WARN, f"{label}: {why}; the result is not verified and is never ranked or published", ev)


def rule_repro(ctx: RuleContext):
    m = ctx.measured or {}
    if m.get("val_bpb") is None:
        return result(SKIP, "no measured result")
    claim = ctx.sub.val_bpb
    if claim is None:
        return result(SKIP, "no claimed val_bpb: reproduction cannot be checked, so the result cannot be verified")
    label, why = coverage(ctx)
    if label != "full":
        return result(SKIP, f"not comparable with the claim: {why}",
                      [Evidence("measured val_bpb vs claimed", value=float(m["val_bpb"]), limit=claim)])
    vals = ctx.sub.seed_bpbs
    sd = statistics.stdev(vals) if len(vals) >= 2 else 0.0
    tol = max(policy.REPRO_FLOOR_BPB, policy.REPRO_SIGMA_MULT * sd)
    diff = float(m["val_bpb"]) - claim
    ev = [Evidence("measured val_bpb vs claimed", value=float(m["val_bpb"]), limit=claim),
          Evidence(f"tolerance max({policy.REPRO_FLOOR_BPB}, {policy.REPRO_SIGMA_MULT} x seed std {sd:.6f})", value=abs(diff), limit=tol)]
    if abs(diff) > tol:
        return result(FAIL, f"measured {m['val_bpb']:.6f} differs from claimed {claim:.6f} by {diff:+.6f} (> {tol:.6f})", ev,
                      kind="not-reproduced")
    return result(PASS, f"reproduced within {tol:.6f} ({diff:+.6f})", ev)


def hardware_factor(hw: str | None) -> tuple[float, str]:
    """Look up the calibration factor for a hardware description (unknown -> reference, 1.0)."""
    if not hw:
        return 1.0, "unknown (assumed reference)"
    key = hw.lower().replace(" ", "").replace("nvidia", "").replace("geforce", "")
    for k, f in sorted(policy.EVAL_SPEED_FACTORS.items(), key=lambda kv: -len(kv[0])):
        if k in key:
            return f, k
    return 1.0, f"{hw} (not in the calibration table; assumed reference)"


def _log_hardware(lg: ParsedLog, sub: Submission) -> str | None:
    if lg.world_size and lg.gpu:
        return f"{lg.world_size}x{lg.gpu}"
    return sub.hardware


def rule_eval_time(ctx: RuleContext):
    if not ctx.is_record_track:
        return result(SKIP, f"no evaluation time budget for track {ctx.sub.track}")
    budget = policy.EVAL_BUDGET_S
    points: list[tuple[float, Evidence]] = []
    m = ctx.measured or {}
    if m.get("eval_seconds") is not None:
        f, hw = hardware_factor(m.get("hardware"))
        proj = float(m["eval_seconds"]) * f
        points.append((proj, Evidence(f"measured evaluation time on {hw}, projected to {policy.REFERENCE_HARDWARE}", value=round(proj, 1), limit=budget)))
    else:
        for lg in ctx.record.result_logs():
            t = lg.eval_time_s
            if t is None:
                continue
            f, hw = hardware_factor(_log_hardware(lg, ctx.sub))
            proj = t * f
            points.append((proj, Evidence(f"logged evaluation time on {hw}, projected to {policy.REFERENCE_HARDWARE}",
                                          file=lg.file, line=lg.total_eval_line, value=round(proj, 1), limit=budget)))
        for seed, r in ctx.sub.seed_results.items():
            if r.eval_time_s is not None and not points:
                points.append((r.eval_time_s, Evidence(f"seed {seed} eval_time_s (submission.json)", file=ctx.json_name, value=r.eval_time_s, limit=budget)))
    if not points:
        return result(SKIP, "no measured or logged evaluation time")
    worst = max(p for p, _ in points)
    ev = [e for _, e in points]
    if worst > budget * (1 + policy.EVAL_PROJECTION_MARGIN):
        return result(FAIL, f"evaluation takes {worst:.0f} s on the reference hardware (budget {budget:.0f} s)", ev)
    if worst > budget:
        return result(WARN, f"evaluation projected at {worst:.0f} s, just over the {budget:.0f} s budget; re-measure on reference hardware", ev)
    return result(PASS, f"evaluation {worst:.0f} s <= {budget:.0f} s", ev)


def run_logs(ctx: RuleContext) -> list[ParsedLog]:
    """The logs of the runs behind the claim: the seed logs, else the log reporting the headline
    number, else every log with a final metric (exploratory runs in the folder are not the claim)."""
    if not ctx.record.seeds:
        head = ctx.record.headline_log()
        if head is not None:
            return [head]
    return ctx.record.result_logs()


def rule_train_time(ctx: RuleContext):
    """Training wall clock including post-training calibration that reads data (GPTQ Hessians):
    ruling X6d counts it against the 600 s. Self-generated (AR) calibration reads no data and is
    reported, not counted (X6c)."""
    if not ctx.is_record_track:
        return result(SKIP, f"no training time budget for track {ctx.sub.track}")
    ev, worst = [], None
    limit = policy.TRAIN_BUDGET_S
    for lg in run_logs(ctx):
        total = lg.train_total_s
        if total is None:
            continue
        parts = f"loop {lg.train_time_s or 0.0:.1f} s + calibration {lg.calib_s:.1f} s"
        if lg.post_total_s is not None and lg.post_total_s >= total:
            parts = "logged wall clock up to the end of calibration"
        ev.append(Evidence(f"training incl. post-training calibration ({parts})", file=lg.file,
                           line=lg.post_total_line or (lg.calib_lines[-1] if lg.calib_lines else lg.train_time_line),
                           value=round(total, 3), limit=limit))
        if lg.ar_calib_s:
            ev.append(Evidence("self-generated (AR) calibration, not counted: it reads no data", file=lg.file,
                               value=round(lg.ar_calib_s, 1)))
        worst = max(worst or 0.0, total)
    if worst is None:
        return result(SKIP, "no logged training time")
    if worst > limit + policy.TRAIN_SLACK_S:
        return result(FAIL, f"training incl. calibration ran {worst:.1f} s (budget {limit:.0f} s)", ev, kind="over-time")
    return result(PASS, f"training incl. calibration {worst:.1f} s <= {limit:.0f} s", ev)


def _tokenizer_key(lg: ParsedLog) -> str | None:
    """Which canonical validation stream a run used, from its logged tokenizer."""
    path = (lg.tokenizer_path or "").lower()
    if lg.byte_tokenizer or "byte" in (lg.val_files or "").lower():
        return "byte"
    if "caseops" in path or "caseops" in (lg.val_files or "").lower():
        return "sp8192-caseops"
    m = re.search(r"_(\d+)_bpe", path) or re.search(r"_sp(\d+)", (lg.val_files or "").lower())
    if m:
        return f"sp{m.group(1)}"
    return f"sp{lg.vocab_size}" if lg.vocab_size else None


def rule_val_tokens(ctx: RuleContext):
    """The logged validation token count is the canonical count for the run's tokenizer (the full
    set, no subset). Runs drop the tail that does not fill a sequence, so a count up to
    VAL_TOKENS_CUT_SLACK below the canonical one is the full set."""
    bad = FAIL if ctx.is_record_track else WARN
    ev, fewer, other, unknown = [], [], [], []
    logs = [lg for lg in run_logs(ctx) if lg.val_tokens is not None]
    for lg in logs:
        key = _tokenizer_key(lg)
        canon = policy.CANONICAL_VAL_TOKENS.get(key or "")
        if canon is None:
            unknown.append(lg)
            ev.append(Evidence(f"validation tokens logged; no canonical count known for tokenizer {key or '?'}",
                               file=lg.file, line=lg.val_tokens_line, value=lg.val_tokens))
            continue
        ev.append(Evidence(f"validation tokens vs the canonical count for {key}", file=lg.file,
                           line=lg.val_tokens_line, value=lg.val_tokens, limit=canon))
        if lg.val_tokens < canon - policy.VAL_TOKENS_CUT_SLACK:
            fewer.append((lg, canon))
        elif lg.val_tokens > canon:
            other.append((lg, canon))
    if not logs:
        if ctx.is_record_track and run_logs(ctx):
            return result(WARN, "no log states how many validation tokens were scored")
        return result(SKIP, "no logged validation token count")
    if fewer:
        lg, canon = fewer[0]
        return result(bad, f"{lg.file} scored {lg.val_tokens:,} validation tokens, fewer than the canonical "
                           f"{canon:,}: a subset of the validation set", ev, kind="val-subset")
    if other:
        lg, canon = other[0]
        return result(WARN, f"{lg.file} scored {lg.val_tokens:,} validation tokens, more than the canonical {canon:,}: "
                            "not the canonical validation set", ev)
    if unknown and len(unknown) == len(logs):
        return result(SKIP, "no canonical validation count is known for this tokenizer", ev)
    return result(PASS, f"{len(logs) - len(unknown)} log(s) scored the canonical validation count", ev)


# A path or dataset name that says validation: `fineweb_val_*`, `.../val/...`, `..._valonly/...`.
_NAMES_VAL = re.compile(r"(^|[/_\-])val(id|idation)?(_?only)?[_./*\-]|fineweb_val")


def rule_train_shards(ctx: RuleContext):
    """The training shard count is logged, and no run trained on validation shards (a train file
    pattern naming val shards, or the CaseOps leak fingerprint of 1499 shards, ruling X12)."""
    logs = run_logs(ctx)
    ev, leaks = [], []
    for lg in logs:
        if lg.train_files is not None:
            ev.append(Evidence("training files", file=lg.file, line=lg.train_files_line, value=lg.train_files))
            if _NAMES_VAL.search(lg.train_files.lower()):
                leaks.append(Evidence("the training file pattern names validation shards", file=lg.file,
                                      line=lg.train_files_line, value=lg.train_files))
        if lg.train_dataset is not None and _NAMES_VAL.search(lg.train_dataset.lower() + "/"):
            # PR #44: the validation shard symlinked as the only file of a `..._valonly` dataset.
            leaks.append(Evidence("the training dataset is named for validation data", file=lg.file,
                                  line=lg.train_dataset_line, value=lg.train_dataset))
        if lg.train_shards is not None:
            ev.append(Evidence("training shards", file=lg.file, line=lg.train_shards_line, value=lg.train_shards))
            if lg.train_shards in policy.LEAKY_TRAIN_SHARDS:
                leaks.append(Evidence(f"{lg.train_shards} training shards is the fingerprint of a data preparation "
                                      "that put validation documents into training", file=lg.file,
                                      line=lg.train_shards_line, value=lg.train_shards))
    if leaks:
        return result(FAIL, "trained on validation data: " + leaks[0].message, leaks + ev, kind="val-in-training")
    counted = [lg for lg in logs if lg.train_shards is not None]
    if not logs:
        return result(SKIP, "no logs")
    if not counted:
        return result(WARN if ctx.is_record_track else SKIP, "no log states the number of training shards")
    return result(PASS, f"training shards logged ({', '.join(sorted({str(lg.train_shards) for lg in counted}))}); "
                        "no validation shards in training", ev)


# ----------------------------------------------------------------------------- significance

def rule_significance(ctx: RuleContext):
    s = ctx.sub
    if not ctx.is_record_track or s.submission_type == "record_support":
        return result(SKIP, "not a record claim")
    best = (ctx.current_best or {}).get("seed_bpbs")
    if not best:
        return result(SKIP, "current best entry's seeds not given")
    new = s.seed_bpbs or ([s.val_bpb] if s.val_bpb is not None else [])
    if not new:
        return result(SKIP, "no per-seed results")
    bpt = (ctx.current_best or {}).get("bytes_per_token") or bytes_per_token(s.val_loss, s.val_bpb)
    sig = record_significance(new, list(best), bpt)
    p = "n/a" if sig.p_value is None else f"{sig.p_value:.4g}"
    ev = [Evidence("improvement over the current best (nats/token)", value=round(sig.delta_nats, 6), limit=sig.margin_nats),
          Evidence(f"one-sided Welch p (H0: improvement <= {sig.margin_nats} nats)", value=sig.p_value, limit=policy.P_THRESHOLD_RULE),
          Evidence("same p against the maintainers' practice threshold", value=sig.p_value, limit=policy.P_THRESHOLD_PRACTICE),
          Evidence("seeds (new, best)", value=[sig.n_new, sig.n_best])]
    if sig.p_value is None:
        return result(WARN, "fewer than two seeds on one side; significance cannot be computed", ev)
    if sig.significant_rule:
        return result(PASS, f"beats the best by {sig.delta_nats:.4f} nats, p={p} < {policy.P_THRESHOLD_RULE}", ev)
    if sig.significant_practice:
        return result(WARN, f"p={p}: meets the practice threshold {policy.P_THRESHOLD_PRACTICE} but not the written {policy.P_THRESHOLD_RULE}", ev)
    why = "below the 0.005-nat margin" if not sig.meets_margin else f"p={p} >= {policy.P_THRESHOLD_PRACTICE}"
    return result(FAIL, f"record claim not significant: {why}", ev)


# ----------------------------------------------------------------------------- static review

def rule_code_parse(ctx: RuleContext):
    """The reviewed code parses. Syntax this Python does not know only warns (a newer release);
    code nested past the interpreter's own limits cannot have run at all, so it cannot stand
    behind an artifact."""
    if not ctx.code_sources:
        return result(SKIP, f"no {ctx.entry} to review")
    errors = ctx.scan.parse_errors if ctx.scan is not None else {}
    if not errors:
        return result(PASS, f"{', '.join(ctx.scan.files) if ctx.scan else ctx.entry} parse")
    message = "; ".join(f"{k}: {v}" for k, v in errors.items())
    ev = [Evidence(v, file=k) for k, v in errors.items()]
    if any(m in message for m in policy.HOSTILE_PARSE_ERRORS):
        return result(FAIL, f"the code cannot be compiled by Python: {message}", ev, kind="code-unparseable")
    return result(WARN, f"the code could not be parsed, so it was not reviewed: {message}", ev)


def _code_rule(rule_id: str):
    def fn(ctx: RuleContext):
        if ctx.scan is None or not ctx.scan.files:
            why = f"no {ctx.entry} to review" if not ctx.code_sources else "not checked: the code could not be parsed"
            return result(SKIP, why)
        hits = [f for f in ctx.scan.findings if f.rule == rule_id]
        ev = [Evidence(h.message, file=h.file, line=h.line, value=list(h.chain) or None) for h in hits]
        if hits:
            # The worst finding decides; a finding in a shipped script the run never uses only warns,
            # and a review finding (native code, an opaque payload) fails until a reviewer overrides it.
            sevs = {h.severity for h in hits}
            sev = "error" if "error" in sevs else ("review" if "review" in sevs else "warning")
            lead = "needs a human reviewer: " if sev == "review" else ""
            where = ", ".join(f"{h.file}:{h.line}" for h in hits[:5])
            return result(WARN if sev == "warning" else FAIL, f"{lead}{hits[0].message} ({where})", ev)
        layers = ctx.scan.layers
        note = [Evidence(f"reviewed code decoded from a {'+'.join(v)} wrapper", file=k) for k, v in layers.items()]
        return result(PASS, f"no finding in {', '.join(ctx.scan.files)}", note)
    fn.__name__ = f"rule_{rule_id}"
    return fn


RULES: tuple[Rule, ...] = (
    # What the evaluator must be able to read comes first, then the code review, then the paperwork:
    # the first failing rule names the rejection kind, so the most basic fault is the one reported.
    Rule("artifact.integrity", "the artifact decodes through the safe codec and matches the model config", "error", rule_artifact),
    Rule("config.legal", "the evaluation config is one the evaluator can run legally", "error", rule_config),
    Rule("size.cap", "code bytes + artifact bytes <= 16,000,000 (max over seeds and the measured artifact)", "error", rule_size_cap),
    Rule("code.parse", "the submitted code parses (never imported or run)", "error", rule_code_parse),
) + tuple(
    Rule(rid, RULE_TEXT[rid], "warning" if severity(rid) == "warning" else "error", _code_rule(rid)) for rid in CODE_RULES
) + (
    Rule("files.required", "submission.json, train_gpt.py and train logs are present (README.md: warning)", "error", rule_required_files),
    Rule("submission.schema", "submission.json parses and normalises to the canonical schema", "error", rule_schema),
    Rule("logs.code-size", "logged code size matches the submitted train_gpt.py and bytes_code", "warning", rule_code_size),
    Rule("logs.final-metric", "each claimed val_bpb appears in a final metric line of its log", "error", rule_final_metric),
    Rule("logs.mean", "reported val_bpb is the mean over the reported seeds", "error", rule_mean),
    Rule("logs.artifact-size", "bytes_total and per-seed artifact sizes match the logged sizes", "warning", rule_artifact_size_log),
    Rule("data.val-tokens", "the logged validation token count is the canonical count for the tokenizer (no subset)", "error", rule_val_tokens),
    Rule("data.train-shards", "the training shard count is logged and no run trained on validation shards", "error", rule_train_shards),
    Rule("seeds.unique", "reported seeds are distinct and match their logs", "error", rule_seeds_unique),
    Rule("seeds.config-identical", "all seeds ran the same hyperparameters", "error", rule_config_identical),
    Rule("time.train", "training wall clock incl. post-training calibration within 600 s", "error", rule_train_time),
    Rule("time.eval", "evaluation time, projected to 8xH100 SXM, within 600 s", "error", rule_eval_time),
    Rule("significance.record", "record claim beats the best by 0.005 nats (Welch, p<0.01 rule / p<0.25 practice)", "error", rule_significance),
    Rule("data.canonical", "the measured result scored the full canonical validation set (no demo cut, canonical sha256)",
         "error", rule_data_canonical, STAGE_SCORE),
    Rule("repro.bpb", "measured BPB within max(0.0015, 3 sigma of reported seeds) of the claim", "error", rule_repro,
         STAGE_SCORE),
)

RULE_IDS = tuple(r.id for r in RULES)
