"""BPB of the CUDA bf16-autocast path against the fp32 CPU path on the reference fixture.

    .venv/bin/python bench/cuda_vs_cpu.py [--modes sliding ttt] [--out bench/results/cuda_vs_cpu.json]

Needs a CUDA device; prints per mode both BPBs, their difference and the reference's own number.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gepa import codec, config  # noqa: E402
from gepa.evaluate import build_model, evaluate_model  # noqa: E402
from gepa.shards import load_validation_tokens  # noqa: E402
from gepa.tokenizer import BUNDLED_TOKENIZER, build_byte_luts, load_tokenizer  # noqa: E402

REF = ROOT / "tests" / "data" / "reference_small"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", nargs="+", default=["standard", "sliding", "ttt"])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "cuda_vs_cpu.json"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("cuda_vs_cpu: no CUDA device here", file=sys.stderr)
        return 2
    state = codec.load_state_dict(REF / "final_model.int6.ptz")
    tokens = load_validation_tokens(str(REF / "fineweb_val_*.bin"), 256)
    luts = build_byte_luts(load_tokenizer(BUNDLED_TOKENIZER), 1024)
    expected = json.loads((REF / "expected.json").read_text())
    out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "modes": {}}
    for mode in args.modes:
        cfg = config.load(REF / f"eval_{mode}.json")
        row = {"reference_cpu_fp32": expected[mode]["val_bpb"]}
        for device in ("cpu", "cuda"):
            model = build_model(cfg, copy.deepcopy(state), device)
            t0 = time.perf_counter()
            row[device] = evaluate_model(model, tokens, luts, cfg, device=device).val_bpb
            row[f"{device}_s"] = time.perf_counter() - t0
        row["cuda_minus_cpu"] = row["cuda"] - row["cpu"]
        out["modes"][mode] = row
        print(f"{mode:9} cpu {row['cpu']:.8f}  cuda(bf16) {row['cuda']:.8f}  diff {row['cuda_minus_cpu']:+.2e}  "
              f"reference {row['reference_cpu_fp32']:.8f}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
