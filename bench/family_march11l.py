"""march11l family throughput: the fast path against the reference-shaped loop (`impl="plain"`),
measured in the same run, interleaved, same weights and data.

    .venv/bin/python bench/family_march11l.py [--repeats 3] [--device cpu|cuda] [--out FILE]

Cases on the stored fixture (tests/data/march11l_small: 4 layers x 160 written by the 03-22
record's own serializer, 12,288 validation targets):
- `sliding_T256_s64`: the fixture's sliding config (artifact a, 4 windows per target);
- `sliding_T1280_s64`: the NTK config (artifact a, 20 windows per target, the records' shape);
- `ttt`: the 03-23 legal score-first TTT config (artifact c, 2 epochs, 2,048-token chunks).
Prints the median wall and CPU seconds of each implementation, targets per second, the ratios
and the BPB difference; writes the report as JSON.
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

FIX = ROOT / "tests" / "data" / "march11l_small"
VAL = str(FIX / "fineweb_val_*.bin")
CASES = {"sliding_T256_s64": ("final_model.int6.ptz", "eval_sliding.json"),
         "sliding_T1280_s64": ("final_model.int6.ptz", "eval_sliding_ntk.json"),
         "ttt": ("variants/final_model_c.int6.ptz", "variants/eval_c_ttt.json")}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--only", nargs="*", help="case names to run (default: all)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "family_march11l.json"))
    args = ap.parse_args()
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device, "cases": {}}
    for name, (artifact, config) in CASES.items():
        if args.only and name not in args.only:
            continue
        prep = runner.prepare(FIX / artifact, json.loads((FIX / config).read_text()))
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
    raise SystemExit(main())
