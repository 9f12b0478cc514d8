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

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gepa import runner  # noqa: E402
from gepa.families.sp8192 import config as scfg  # noqa: E402
from gepa.families.sp8192.family import FAMILY, build_model  # noqa: E402

import plain_vs_fast  # noqa: E402  (bench/, this script's folder)

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
    args = plain_vs_fast.parse_args("family_sp8192", repeats=2)
    dev = torch.device(args.device)
    prep = runner.prepare(FIX / "final_model.int6.ptz", FIX / "eval_standard.json")
    data = FAMILY.load_data(prep.cfg, str(FIX / "fineweb_val_*.bin"), TOKENIZER)
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(dev), "cases": {}}
    for name, cfg in _cases():
        if args.only and name not in args.only:
            continue
        row = plain_vs_fast.compare(lambda impl, model: FAMILY.evaluate(model, data, cfg, device=dev, impl=impl),
                                    args.repeats, dev, untimed=lambda: build_model(cfg, prep.state, dev))
        # this report names the count and rate by targets
        row["targets"], row["targets_per_s"] = row.pop("tokens_scored"), row.pop("tokens_per_s")
        med, med_cpu = row["median_s"], row["median_cpu_s"]
        report["cases"][name] = row
        print(f"{name:15} plain {med['plain']:7.2f} s   fast {med['fast']:7.2f} s   wall {row['speedup']:4.2f}x   "
              f"CPU-s {med_cpu['plain']:.1f}/{med_cpu['fast']:.1f} = {row['speedup_cpu']:4.2f}x   "
              f"{row['targets_per_s']['fast']:,.0f} targets/s fast   |dBPB| {row['bpb_abs_diff']:.1e}", flush=True)
    plain_vs_fast.write(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
