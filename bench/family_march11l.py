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

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gepa import runner  # noqa: E402

import plain_vs_fast  # noqa: E402  (bench/, this script's folder)

FIX = ROOT / "tests" / "data" / "march11l_small"
VAL = str(FIX / "fineweb_val_*.bin")
CASES = {"sliding_T256_s64": ("final_model.int6.ptz", "eval_sliding.json"),
         "sliding_T1280_s64": ("final_model.int6.ptz", "eval_sliding_ntk.json"),
         "ttt": ("variants/final_model_c.int6.ptz", "variants/eval_c_ttt.json")}


def main() -> int:
    args = plain_vs_fast.parse_args("family_march11l", repeats=3)
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device, "cases": {}}
    for name, (artifact, config) in CASES.items():
        if args.only and name not in args.only:
            continue
        prep = runner.prepare(FIX / artifact, json.loads((FIX / config).read_text()))
        row = plain_vs_fast.compare(lambda impl, _: runner.run_prepared(prep, val_glob=VAL, device=args.device, impl=impl),
                                    args.repeats, args.device)
        report["cases"][name] = row
        plain_vs_fast.print_row(name, row)
    plain_vs_fast.write(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
