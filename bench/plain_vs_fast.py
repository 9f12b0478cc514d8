"""The scaffolding the family benchmarks share: their command line, the interleaved timing of the
reference-shaped loop (`impl="plain"`) against the fast path, and the per-case summary row.

Imported by bench/family_{baseline,sp8192,march11l}.py as a sibling module (a script's own folder
is first on `sys.path`); each script keeps its cases and its printed line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]


def parse_args(name: str, repeats: int) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=repeats)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--only", nargs="*", help="case names to run (default: all)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / f"{name}.json"))
    return ap.parse_args()


def compare(run: Callable[[str, Any], Any], repeats: int, device: str | torch.device,
            untimed: Callable[[], Any] = lambda: None) -> dict[str, Any]:
    """Time `run(impl, untimed())` (an `EvalResult`) for both implementations, `repeats` times
    each, interleaved so load drift hits both alike; `untimed` (building the model, say) runs
    before each clock starts. The row of medians, ratios and BPBs."""
    wall: dict[str, list[float]] = {"plain": [], "fast": []}
    cpu: dict[str, list[float]] = {"plain": [], "fast": []}
    bpb, scored = {}, 0
    for _ in range(repeats):
        for impl in ("plain", "fast"):
            ready = untimed()
            t0, c0 = time.perf_counter(), time.process_time()
            r = run(impl, ready)
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            wall[impl].append(time.perf_counter() - t0)
            cpu[impl].append(time.process_time() - c0)
            bpb[impl], scored = r.val_bpb, r.tokens_scored
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    return {"median_s": med, "all_s": wall, "median_cpu_s": med_cpu, "all_cpu_s": cpu,
            "speedup": med["plain"] / med["fast"], "speedup_cpu": med_cpu["plain"] / med_cpu["fast"],
            "tokens_scored": scored, "tokens_per_s": {k: scored / v for k, v in med.items()},
            "val_bpb": bpb, "bpb_abs_diff": abs(bpb["plain"] - bpb["fast"])}


def print_row(name: str, row: dict[str, Any]) -> None:
    med, med_cpu = row["median_s"], row["median_cpu_s"]
    print(f"{name:18} plain {med['plain']:7.2f} s ({row['tokens_per_s']['plain']:8.0f} tok/s)   "
          f"fast {med['fast']:7.2f} s ({row['tokens_per_s']['fast']:8.0f} tok/s)   "
          f"speed-up {row['speedup']:4.2f}x (CPU seconds {med_cpu['plain']:.1f} / {med_cpu['fast']:.1f} = "
          f"{row['speedup_cpu']:4.2f}x)   |dBPB| {row['bpb_abs_diff']:.1e}", flush=True)


def write(report: dict[str, Any], out: str) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=2))
