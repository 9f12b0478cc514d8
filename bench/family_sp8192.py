"""sp8192 family throughput: the fast path against the reference-shaped loop (`impl="plain"`),
measured in the same run, interleaved, on the same weights and tokens.

    .venv/bin/python bench/family_sp8192.py [--repeats 2] [--device cpu|cuda]

Cases, all on the published fixture artifact (5 layers, d=144, 8 looped entries, 8192 vocab)
and its validation shard (22,912 targets):
- `standard`, `sliding` (seq 128, stride 64) and `ttt_b` (SGD, 4 chunks of 6,144 tokens): the
  fixture's own configs. `standard` runs the same code for both implementations (the reference's
  batch means), so its ratio shows the measurement noise;
- `sliding_seq512`: seq 512, stride 64, so every position is in 8 windows (the records use 2048 /
  64 = 32) and the fast path's savings show.
Prints median wall and CPU seconds per implementation, the ratio, scored targets per second and
the BPB difference (tests hold it to 1e-5).
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
from gepa.families.sp8192 import config as scfg  # noqa: E402
from gepa.families.sp8192.family import FAMILY, build_model  # noqa: E402

FIX = ROOT / "tests" / "data" / "sp8192_small"
TOKENIZER = ROOT / "gepa" / "assets" / "fineweb_8192_bpe.model"


def _cases():
    base = json.loads((FIX / "eval_ttt_b.json").read_text())
    for name, mode, model, ev in (("standard", "standard", {}, {}), ("sliding", "sliding", {}, {}),
                                  ("ttt_b", "ttt", {}, {}),
                                  ("sliding_seq512", "sliding", {"sp8192_rotary_train_seq_len": 512},
                                   {"seq_len": 512, "stride": 64})):
        raw = json.loads(json.dumps(base))
        raw["model"].update(model)
        raw["eval"].update({"mode": mode, **ev})
        yield name, scfg.from_dict(raw)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--only", nargs="*", help="case names (default: all)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "family_sp8192.json"))
    args = ap.parse_args()
    dev = torch.device(args.device)
    prep = runner.prepare(FIX / "final_model.int6.ptz", FIX / "eval_standard.json")
    data = FAMILY.load_data(prep.cfg, str(FIX / "fineweb_val_*.bin"), TOKENIZER)
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(dev), "cases": {}}
    for name, cfg in _cases():
        if args.only and name not in args.only:
            continue
        wall: dict[str, list[float]] = {"plain": [], "fast": []}
        cpu: dict[str, list[float]] = {"plain": [], "fast": []}
        bpb, scored = {}, 0
        for _ in range(args.repeats):
            for impl in ("plain", "fast"):  # interleaved so load drift hits both alike
                model = build_model(cfg, prep.state, dev)
                t0, c0 = time.perf_counter(), time.process_time()
                r = FAMILY.evaluate(model, data, cfg, device=dev, impl=impl)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                wall[impl].append(time.perf_counter() - t0)
                cpu[impl].append(time.process_time() - c0)
                bpb[impl], scored = r.val_bpb, r.tokens_scored
        med = {k: statistics.median(v) for k, v in wall.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        row = {"median_s": med, "all_s": wall, "median_cpu_s": med_cpu, "all_cpu_s": cpu,
               "speedup": med["plain"] / med["fast"], "speedup_cpu": med_cpu["plain"] / med_cpu["fast"],
               "targets": scored, "targets_per_s": {k: scored / v for k, v in med.items()}, "val_bpb": bpb,
               "bpb_abs_diff": abs(bpb["plain"] - bpb["fast"])}
        report["cases"][name] = row
        print(f"{name:15} plain {med['plain']:7.2f} s   fast {med['fast']:7.2f} s   wall {row['speedup']:4.2f}x   "
              f"CPU-s {med_cpu['plain']:.1f}/{med_cpu['fast']:.1f} = {row['speedup_cpu']:4.2f}x   "
              f"{row['targets_per_s']['fast']:,.0f} targets/s fast   |dBPB| {row['bpb_abs_diff']:.1e}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
