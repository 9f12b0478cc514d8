"""The headline number of a records folder: the final score the record itself reports.

The leaderboard shows one number per record. Which one, in order:
1. A score submission.json declares for a later evaluation than `val_bpb`: a compliance re-run
   of the same configuration (`compliance_rerun.seed_results`, mean over its seeds), or a later
   evaluation mode (`sliding_val_bpb`, `ttt_val_bpb`, ...). The record's last evaluation is what
   it reports.
2. A mean the record states in its own metadata ("3-seed mean 1.1570") when its seed logs
   support it (the mean of their final metric lines agrees at the stated precision): the
   metadata's `val_bpb` is then one seed, the stated mean is the headline.
3. A `val_bpb` printed at display precision (4 decimals or fewer) with no per-seed results, in a
   folder of two or more run logs: the mean of the runs, when it agrees with the claim within one
   unit of the claim's last decimal. A rounded number is a summary, and the README judges a
   record by the mean over its runs; the board prints that mean (LoRA TTT: `val_bpb` 1.1929 is
   train_v3 rounded, the board's 1.1928 is the mean of train_v0..v3, as the record's README
   states). An exact `val_bpb` (5+ decimals) is one run's measured value and stands as it is
   (fp16 Embed: 1.21972502 is train.log, its seed-42 re-run is not averaged in).
4. The mean over `seed_results` (the README's criterion is a mean over runs), else `val_bpb`.
5. No submission.json, or no `val_bpb` in it: the logs. Each run log's last final metric line
   (a sliding-window or TTT score when that is the run's last evaluation), averaged over the
   seed logs when the file names say which seed each is, else over every log that has one.

`headline(record)` returns (value, source) so a page can say where the number came from.
"""

from __future__ import annotations

import re
import statistics
from typing import TYPE_CHECKING

from gepa.compliance.logs import ParsedLog

if TYPE_CHECKING:  # pragma: no cover
    from gepa.compliance.record import Record

# Scores of evaluations that run after the plain roundtrip, in the order a record would run them.
LATER_EVAL_KEYS = ("sliding_val_bpb", "sliding_window_val_bpb", "ttt_val_bpb", "legal_ttt_val_bpb",
                   "post_ttt_val_bpb", "final_val_bpb")
_STATED_MEAN = re.compile(r"(\d+)-seed mean\s*(?:val_bpb\s*)?[:=]?\s*(\d\.\d{3,8})", re.I)


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def _run_logs(record: "Record") -> list[ParsedLog]:
    with_final = [lg for lg in record.logs if lg.final_metrics]
    seeded = [lg for lg in with_final if lg.file_seed is not None]
    return seeded if len(seeded) >= 2 else with_final


def logs_mean(record: "Record") -> float | None:
    """Mean of the last final metric line over the record's run logs (None without any)."""
    logs = _run_logs(record)
    return statistics.fmean(lg.final_metrics[-1].val_bpb for lg in logs) if logs else None


def _stated_mean(record: "Record") -> float | None:
    raw = record.submission.raw
    text = " ".join(str(raw.get(k, "")) for k in ("blurb", "name", "technique_summary", "notes"))
    m = _STATED_MEAN.search(text)
    if not m:
        return None
    stated, n = m.group(2), int(m.group(1))
    seeds = _run_logs(record)
    if len(seeds) != n:
        return None
    mean = statistics.fmean(lg.final_metrics[-1].val_bpb for lg in seeds)
    return mean if abs(mean - float(stated)) <= 0.5 * 10.0 ** (-_decimals(stated)) + 1e-12 else None


def _rounded_claim_mean(record: "Record") -> float | None:
    """The run mean behind a `val_bpb` given at display precision (rule 3), else None."""
    raw = record.submission.raw.get("val_bpb") if isinstance(record.submission.raw, dict) else None
    if not isinstance(raw, (int, float)) or isinstance(raw, bool):
        return None
    places = _decimals(repr(float(raw)))
    if places > 4:
        return None
    logs = _run_logs(record)
    if len(logs) < 2:
        return None
    mean = statistics.fmean(lg.final_metrics[-1].val_bpb for lg in logs)
    return mean if abs(mean - float(raw)) <= 10.0 ** (-places) + 1e-12 else None


def headline(record: "Record") -> tuple[float | None, str]:
    sub = record.submission
    rerun = sub.raw.get("compliance_rerun") if isinstance(sub.raw, dict) else None
    if isinstance(rerun, dict) and isinstance(rerun.get("seed_results"), dict):
        vals = [v.get("val_bpb") for v in rerun["seed_results"].values() if isinstance(v, dict)]
        vals = [float(v) for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if vals:
            return statistics.fmean(vals), f"mean of the compliance re-run's {len(vals)} seeds"
    for key in LATER_EVAL_KEYS:
        v = sub.raw.get(key) if isinstance(sub.raw, dict) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v), f"submission.json {key} (the record's last evaluation)"
    if sub.val_bpb is not None and not sub.seed_results:
        stated = _stated_mean(record)
        if stated is not None:
            return stated, "the seed mean the record states, recomputed from its seed logs"
        rounded = _rounded_claim_mean(record)
        if rounded is not None:
            n = len(_run_logs(record))
            return rounded, f"mean of the {n} run logs behind the rounded submission.json val_bpb"
    if sub.score is not None:
        return sub.score, "mean of seed_results" if sub.seed_bpbs else "submission.json val_bpb"
    mean = logs_mean(record)
    if mean is not None:
        n = len(_run_logs(record))
        return mean, f"the last final metric line of {n} log(s)" + (" (mean)" if n > 1 else "")
    return None, "no score in submission.json or the logs"
