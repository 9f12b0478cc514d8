"""Run every benchmark of bench/ once, in sequence, with its quickest arguments (`make bench`).

A smoke run of the whole suite: each script still prints its own figures (ratios measured in the
same run, as BENCHMARKS.md reports them), but with one repeat and short durations, so the suite
finishes in minutes instead of hours. The figures BENCHMARKS.md quotes come from each script's
own command there, not from this run.

Skipped, with the reason printed: the GPU benchmarks on a machine without CUDA (on a GPU machine
run `bash bench/device_check.sh`), and the two review benchmarks unless `--devset DIR` names the
development set they read (it lives outside the repository).

    .venv/bin/python bench/run_all.py [--only NAME ...] [--devset DIR] [--list]

Exit status: 0 when every script that ran exited 0, else 1 (the failing scripts are listed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "quick"  # the quick runs never overwrite the quoted results
NOT_BENCHMARKS = {"run_all", "make_march11l_fixtures"}  # scripts in bench/ that measure nothing


@dataclass(frozen=True)
class Bench:
    name: str                 # the script, bench/<name>.py
    args: tuple[str, ...]     # its quickest arguments
    needs: str = ""           # "cuda" or "devset": skipped unless available


def benches(devset: str | None) -> list[Bench]:
    out = lambda name: ("--out", str(RESULTS / f"{name}.json"))  # noqa: E731 - a table helper
    dev = (devset,) if devset else ()
    return [
        Bench("eval_speed", ("--repeats", "1", *out("eval_speed"))),
        Bench("family_baseline", ("--repeats", "1", *out("family_baseline"))),
        Bench("family_sp8192", ("--repeats", "1", *out("family_sp8192"))),
        Bench("family_caseops", ("--repeats", "1", *out("family_caseops"))),
        Bench("family_march11l", ("--repeats", "1", *out("family_march11l"))),
        Bench("family_march11l", ("--repeats", "1", *out("family_march11l"))),
        Bench("compliance_check", ()),
        Bench("code_diff", ("--repeat", "1")),
        Bench("leaderboard_page", ("--requests", "10")),
        Bench("api_load", ("--duration", "5", "--entries", "200")),
        Bench("review_devset", (*dev, "--quiet"), needs="devset"),
        Bench("review_time", (*dev, "--repeat", "1"), needs="devset"),
        Bench("cuda_vs_cpu", (*out("cuda_vs_cpu"),), needs="cuda"),
        Bench("gpu_eval", ("--device", "cuda", "--chunks", "1", *out("gpu_eval")), needs="cuda"),
    ]


def missing(b: Bench, devset: str | None) -> str | None:
    """Why `b` cannot run here, or None."""
    if b.needs == "cuda" and not torch.cuda.is_available():
        return "no CUDA device (run bash bench/device_check.sh on a GPU machine)"
    if b.needs == "devset" and not devset:
        return "needs the review development set: pass --devset DIR"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks (script names)")
    ap.add_argument("--devset", help="the review development set (review_devset, review_time)")
    ap.add_argument("--list", action="store_true", help="print the benchmarks and their arguments, run nothing")
    args = ap.parse_args(argv)
    table = benches(args.devset)
    known = {b.name for b in table}
    unknown = sorted(set(args.only or ()) - known)
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
    on_disk = {p.stem for p in (ROOT / "bench").glob("*.py")} - NOT_BENCHMARKS
    if on_disk - known:  # said out loud: a new benchmark belongs in the table above with its quick arguments
        print(f"not in run_all.py's table, not run: {', '.join(sorted(on_disk - known))}", flush=True)
    chosen = [b for b in table if not args.only or b.name in args.only]
    if args.list:
        for b in chosen:
            print(f"{b.name:<18} {' '.join(b.args)}" + (f"   (needs {b.needs})" if b.needs else ""))
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    failed, ran = [], 0
    for b in chosen:
        why = missing(b, args.devset)
        if why:
            print(f"== {b.name}: skipped: {why}", flush=True)
            continue
        print(f"== {b.name}: {' '.join(b.args)}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, str(ROOT / "bench" / f"{b.name}.py"), *b.args], cwd=ROOT).returncode
        ran += 1
        print(f"== {b.name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc != 0:
            failed.append(b.name)
    print(f"{ran} benchmarks ran, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
