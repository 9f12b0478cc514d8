"""Baseline family throughput: the fast path against the reference-shaped loop (`impl="plain"`),
measured in the same run, interleaved, same weights and data.

    .venv/bin/python bench/family_baseline.py [--repeats 3] [--device cpu|cuda] [--out FILE]

Cases, all on the stored fixture (tests/data/baseline_small: the 3x192 artifact written by the
reference's own quantizer, 22,573 validation tokens):
- `sliding_T128_s64`: the fixture's sliding config (2 windows per position);
- `sliding_T1024_s64`: the record's proportions (seq 1024, stride 64: 16 windows per position);
- `lora_ttt`: the fixture's LoRA TTT config (rank 8, chunk 32, context 128, 6 documents per batch).
Standard eval has one implementation (every position is scored), so it is not compared.
Prints the median wall and CPU seconds of each implementation, targets scored per second, the
ratios and the BPB difference; writes the report as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gepa import runner  # noqa: E402

FIX = ROOT / "tests" / "data" / "baseline_small"
VAL = str(FIX / "fineweb_val_*.bin")


def cases() -> dict[str, dict]:
    sliding = json.loads((FIX / "eval_sliding.json").read_text())
    long = json.loads(json.dumps(sliding))
    long["eval"].update(seq_len=1024, stride=64)
    return {"sliding_T128_s64": sliding, "sliding_T1024_s64": long,
            "lora_ttt": json.loads((FIX / "eval_lora_ttt.json").read_text())}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--only", nargs="*", help="case names to run (default: all)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "family_baseline.json"))
    args = ap.parse_args()
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device, "cases": {}}
    for name, raw in cases().items():
        if args.only and name not in args.only:
            continue
        prep = runner.prepare(FIX / "final_model.int8.ptz", raw)
        wall: dict[str, list[float]] = {"plain": [], "fast": []}
        cpu: dict[str, list[float]] = {"plain": [], "fast": []}
        bpb, scored = {}, 0
        for _ in range(args.repeats):
            for impl in ("plain", "fast"):  # interleaved so load drift hits both alike
                t0, c0 = time.perf_counter(), time.process_time()
                r = runner.run_prepared(prep, val_glob=VAL, device=args.device, impl=impl)
                if args.device == "cuda":
                    torch.cuda.synchronize()
                wall[impl].append(time.perf_counter() - t0)
                cpu[impl].append(time.process_time() - c0)
                bpb[impl], scored = r.val_bpb, r.tokens_scored
        med = {k: statistics.median(v) for k, v in wall.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        row = {"median_s": med, "all_s": wall, "median_cpu_s": med_cpu, "all_cpu_s": cpu,
               "speedup": med["plain"] / med["fast"], "speedup_cpu": med_cpu["plain"] / med_cpu["fast"],
               "tokens_scored": scored, "tokens_per_s": {k: scored / v for k, v in med.items()},
               "val_bpb": bpb, "bpb_abs_diff": abs(bpb["plain"] - bpb["fast"])}
        report["cases"][name] = row
        print(f"{name:18} plain {med['plain']:7.2f} s ({row['tokens_per_s']['plain']:8.0f} tok/s)   "
              f"fast {med['fast']:7.2f} s ({row['tokens_per_s']['fast']:8.0f} tok/s)   "
              f"speed-up {row['speedup']:4.2f}x (CPU seconds {med_cpu['plain']:.1f} / {med_cpu['fast']:.1f} = "
              f"{row['speedup_cpu']:4.2f}x)   |dBPB| {row['bpb_abs_diff']:.1e}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
