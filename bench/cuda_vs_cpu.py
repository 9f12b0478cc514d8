"""BPB of the CUDA bf16-autocast path against the fp32 CPU path, on every family's fixture.

    .venv/bin/python bench/cuda_vs_cpu.py [--only gepa sp8192] [--out bench/results/cuda_vs_cpu.json]

For each stored fixture (tests/data/*_small with an artifact, shards and eval_*.json configs) and
each config, scores on the CPU (fp32, as the references' numbers were made) and on CUDA (bf16
autocast, as the records ran), and prints both, their difference, and the time of each. Needs a
CUDA device for the second column; without one it reports the CPU side only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gepa import runner  # noqa: E402

DATA = ROOT / "tests" / "data"


def fixtures(only: list[str] | None):
    for folder in sorted(DATA.glob("*_small")):
        artifact = next(iter(sorted(folder.glob("final_model.*.ptz"))), None)
        if artifact is None:
            continue
        for cfg_path in sorted(folder.glob("eval_*.json")):
            family = json.loads(cfg_path.read_text()).get("family", "gepa")
            if only and family not in only:
                continue
            yield folder, artifact, cfg_path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", help="families to run (default: all)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "cuda_vs_cpu.json"))
    args = ap.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    out = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "none", "torch": torch.__version__,
           "cases": {}}
    for folder, artifact, cfg_path in fixtures(args.only):
        prep = runner.prepare(artifact, cfg_path)
        row: dict = {"family": prep.family.name}
        for device in devices:
            t0 = time.perf_counter()
            row[device] = runner.run_prepared(runner.prepare(artifact, cfg_path), val_glob=str(folder / "fineweb_val_0*.bin"),
                                              device=device).val_bpb
            row[f"{device}_s"] = time.perf_counter() - t0
        if "cuda" in row:
            row["cuda_minus_cpu"] = row["cuda"] - row["cpu"]
        name = f"{folder.name}/{cfg_path.stem}"
        out["cases"][name] = row
        print(f"{name:48} cpu {row['cpu']:.8f} ({row['cpu_s']:.1f} s)"
              + (f"  cuda(bf16) {row['cuda']:.8f} ({row['cuda_s']:.1f} s)  diff {row['cuda_minus_cpu']:+.2e}"
                 if "cuda" in row else ""), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
