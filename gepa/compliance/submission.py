"""Normalise the submission.json variants found in the wild into one `Submission`.

Real files differ in shape (seeds as a list or as a dict of results, a single `seed`), in
spelling (`non-record-16mb` vs `non_record_16mb`), in names (`code_bytes` vs `bytes_code`,
`artifact_size_bytes` vs `bytes_total`) and in what is missing (track, name, author, date).
`normalise` never raises on such differences: it records each repair or gap in `notes` (a
repair) or `problems` (something the schema rule should report) and fills what it can infer.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gepa.compliance import policy

_DATE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})")


@dataclass
class SeedResult:
    seed: str
    val_bpb: float | None = None
    val_loss: float | None = None
    artifact_bytes: int | None = None
    train_time_s: float | None = None
    eval_time_s: float | None = None


@dataclass
class Submission:
    json_file: str | None
    track: str | None
    name: str | None = None
    author: str | None = None
    github_id: str | None = None
    date: str | None = None
    val_bpb: float | None = None
    val_loss: float | None = None
    val_bpb_std: float | None = None
    seeds: list[str] = field(default_factory=list)
    seed_results: dict[str, SeedResult] = field(default_factory=dict)
    bytes_total: int | None = None
    bytes_code: int | None = None
    submission_type: str | None = None
    hardware: str | None = None
    eval_time_s: float | None = None
    p_value: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def seed_bpbs(self) -> list[float]:
        return [r.val_bpb for r in self.seed_results.values() if r.val_bpb is not None]

    @property
    def seed_mean_bpb(self) -> float | None:
        vals = self.seed_bpbs
        return statistics.fmean(vals) if vals else None

    @property
    def score(self) -> float | None:
        """The number a leaderboard ranks by: the mean over reported seeds, else `val_bpb`.

        The README's rule is a mean over runs; a few files put one seed's number (or the best
        seed) into `val_bpb`, so when per-seed results exist their mean is what counts.
        """
        mean = self.seed_mean_bpb
        return mean if mean is not None else self.val_bpb


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, str):
        m = re.match(r"^\s*[<>~=]*\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*$", v)
        return float(m.group(1)) if m else None
    return None


def _int(v: Any) -> int | None:
    f = _num(v)
    return int(f) if f is not None and f == int(f) else None


def _str(v: Any) -> str | None:
    return v.strip() if isinstance(v, str) and v.strip() else None


def canonical_track(value: str | None) -> str | None:
    if not value:
        return None
    key = re.sub(r"[-\s]+", "_", value.strip().lower())
    return policy.TRACK_ALIASES.get(key)


def track_from_path(folder: Path) -> str | None:
    for part in reversed(folder.resolve().parts):
        t = canonical_track(part)
        if t:
            return t
    return None


def find_submission_json(folder: Path) -> Path | None:
    main = folder / "submission.json"
    if main.is_file():
        return main
    # Some merged records renamed it (submission_ternary.json, submission_jepa.json, ...).
    others = sorted(p for p in folder.glob("submission*.json") if p.is_file())
    return others[0] if others else None


def _seed_result(seed: str, raw: Any) -> SeedResult:
    r = SeedResult(seed=seed)
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        r.val_bpb = _num(raw)
        return r
    if not isinstance(raw, dict):
        return r
    r.val_bpb = _num(raw.get("val_bpb", raw.get("bpb")))
    r.val_loss = _num(raw.get("val_loss"))
    r.artifact_bytes = _int(raw.get("artifact_bytes", raw.get("bytes_total")))
    r.train_time_s = _num(raw.get("train_time_s"))
    r.eval_time_s = _num(raw.get("eval_time_s"))
    if r.eval_time_s is None and _num(raw.get("eval_time_ms")) is not None:
        r.eval_time_s = _num(raw.get("eval_time_ms")) / 1000.0
    return r


def normalise(raw: Any, folder: Path, json_file: str | None = None) -> Submission:
    """Turn parsed submission.json content into a `Submission` (never raises)."""
    sub = Submission(json_file=json_file, track=None)
    if not isinstance(raw, dict):
        sub.problems.append("submission.json is not a JSON object")
        sub.track = track_from_path(folder)
        return sub
    sub.raw = raw
    sub.name = _str(raw.get("name"))
    sub.author = _str(raw.get("author"))
    sub.github_id = _str(raw.get("github_id"))
    sub.submission_type = _str(raw.get("submission_type"))
    sub.hardware = _str(raw.get("hardware")) or _str(raw.get("gpu"))

    declared = _str(raw.get("track"))
    from_path = track_from_path(folder)
    if declared:
        sub.track = canonical_track(declared)
        if sub.track is None:
            sub.problems.append(f"unknown track {declared!r}; use one of {', '.join(policy.TRACKS)}")
            sub.track = from_path
        elif sub.track != declared:
            sub.notes.append(f"track {declared!r} normalised to {sub.track!r}")
        record_mismatch = from_path is not None and (sub.track == policy.TRACK_RECORD) != (from_path == policy.TRACK_RECORD)
        if record_mismatch:
            sub.problems.append(f"track {declared!r} disagrees with the folder's track {from_path!r}")
    else:
        sub.track = from_path
        sub.notes.append(f"track missing; inferred {sub.track!r} from the folder path")

    date = raw.get("date")
    if isinstance(date, str) and _DATE_RE.match(date.strip()):
        sub.date = _DATE_RE.match(date.strip()).group(1)
        if sub.date != date.strip():
            sub.notes.append(f"date {date!r} truncated to {sub.date}")
    else:
        m = _DATE_RE.match(folder.name)
        sub.date = m.group(1) if m else None
        sub.notes.append(f"date missing or malformed ({date!r}); taken from the folder name")

    # Seeds: list[int], dict[seed -> results], or a single `seed`.
    seeds_raw = raw.get("seeds")
    results_raw = raw.get("seed_results")
    if isinstance(seeds_raw, dict):
        sub.notes.append("seeds given as a dict; moved into seed_results")
        results_raw = {**seeds_raw, **(results_raw if isinstance(results_raw, dict) else {})}
        seeds_raw = list(seeds_raw)
    if isinstance(results_raw, dict):
        for k, v in results_raw.items():
            sub.seed_results[str(k)] = _seed_result(str(k), v)
    if isinstance(seeds_raw, list):
        sub.seeds = [str(s) for s in seeds_raw]
    elif seeds_raw is not None:
        sub.problems.append(f"seeds must be a list or an object, got {type(seeds_raw).__name__}")
    if not sub.seeds and sub.seed_results:
        sub.seeds = list(sub.seed_results)
    if not sub.seeds and _int(raw.get("seed")) is not None:
        sub.seeds = [str(_int(raw.get("seed")))]
        sub.notes.append("single `seed` field read as the seed list")

    sub.val_bpb = _num(raw.get("val_bpb"))
    if sub.val_bpb is None:
        sub.val_bpb = _num(raw.get("mean_bpb"))
        if sub.val_bpb is None and sub.seed_mean_bpb is not None:
            sub.val_bpb = sub.seed_mean_bpb
            sub.notes.append("val_bpb missing; using the mean of seed_results")
        if sub.val_bpb is None:
            sub.problems.append("val_bpb is missing or not a number")
    sub.val_loss = _num(raw.get("val_loss"))
    sub.val_bpb_std = _num(raw.get("val_bpb_std"))
    sub.p_value = _num(raw.get("p_value"))

    sub.bytes_total = _int(raw.get("bytes_total"))
    if sub.bytes_total is None:
        for alt in ("artifact_bytes_max", "artifact_size_bytes"):
            if _int(raw.get(alt)) is not None:
                sub.bytes_total = _int(raw.get(alt))
                sub.notes.append(f"bytes_total missing; using {alt}")
                break
    seed_sizes = [r.artifact_bytes for r in sub.seed_results.values() if r.artifact_bytes is not None]
    if seed_sizes and (sub.bytes_total is None or max(seed_sizes) > sub.bytes_total):
        if sub.bytes_total is not None:
            sub.notes.append(f"bytes_total {sub.bytes_total} below the largest seed artifact; using the max over seeds")
        sub.bytes_total = max(seed_sizes)
    sub.bytes_code = _int(raw.get("bytes_code", raw.get("code_bytes")))

    ev = raw.get("eval_time_seconds", raw.get("eval_time_s"))
    if isinstance(ev, list):
        nums = [x for x in (_num(v) for v in ev) if x is not None]
        sub.eval_time_s = max(nums) if nums else None
    else:
        sub.eval_time_s = _num(ev)

    for key in ("name", "author"):
        if getattr(sub, key) is None:
            sub.problems.append(f"{key} is missing")
    if sub.track is None:
        sub.problems.append("track is missing and cannot be inferred from the folder path")
    return sub


def load_submission(folder: Path) -> Submission:
    """Read and normalise the folder's submission.json (a missing or broken file is a problem, not an error)."""
    path = find_submission_json(folder)
    if path is None:
        sub = Submission(json_file=None, track=track_from_path(folder))
        m = _DATE_RE.match(folder.name)
        sub.date = m.group(1) if m else None
        sub.problems.append("no submission.json in the folder")
        return sub
    try:
        raw = json.loads(path.read_text(encoding="utf-8"), parse_constant=lambda c: None)
    except (OSError, ValueError, RecursionError) as exc:
        sub = Submission(json_file=path.name, track=track_from_path(folder))
        sub.problems.append(f"{path.name} is not valid JSON: {exc}")
        return sub
    sub = normalise(raw, folder, json_file=path.name)
    if path.name != "submission.json":
        sub.notes.append(f"metadata read from {path.name} (expected submission.json)")
    return sub
