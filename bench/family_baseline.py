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

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gepa import runner  # noqa: E402

import plain_vs_fast  # noqa: E402  (bench/, this script's folder)

FIX = ROOT / "tests" / "data" / "baseline_small"
VAL = str(FIX / "fineweb_val_*.bin")


def cases() -> dict[str, dict]:
    sliding = json.loads((FIX / "eval_sliding.json").read_text())
    long = json.loads(json.dumps(sliding))
    long["eval"].update(seq_len=1024, stride=64)
    return {"sliding_T128_s64": sliding, "sliding_T1024_s64": long,
            "lora_ttt": json.loads((FIX / "eval_lora_ttt.json").read_text())}


def main() -> int:
    args = plain_vs_fast.parse_args("family_baseline", repeats=3)
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device, "cases": {}}
    for name, raw in cases().items():
        if args.only and name not in args.only:
            continue
        prep = runner.prepare(FIX / "final_model.int8.ptz", raw)
        row = plain_vs_fast.compare(lambda impl, _: runner.run_prepared(prep, val_glob=VAL, device=args.device, impl=impl),
                                    args.repeats, args.device)
        report["cases"][name] = row
        plain_vs_fast.print_row(name, row)
    plain_vs_fast.write(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
