"""Score-first TTT on CPU: the fast path against a faithful re-implementation of the reference
loop (`impl="plain"`: padded batches of `batch_seqs` windows built fresh per batch, full logits
for every position), measured in the same run, interleaved, same weights and data.

    .venv/bin/python bench/eval_speed.py [--repeats 3]

Two configurations:
- `reference_small`: the published 3-layer fixture artifact and its TTT config (seq 256,
  stride 64, 3 epochs);
- `seed_shape_tiny`: a 2-layer d=128 model with the seed run's proportions (seq_len/stride = 32,
  10 epochs per chunk, 16 sequences per chunk).
Prints per-configuration median wall and CPU seconds (CPU seconds are steadier on a shared
machine), the speed-up ratios and that both BPBs agree.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gepa import codec  # noqa: E402
from gepa.bpb import position_bytes  # noqa: E402
from gepa.containers import clean  # noqa: E402
from gepa.families.gepa import config  # noqa: E402
from gepa.families.gepa.family import FAMILY, build_model  # noqa: E402
from gepa.families.gepa.model import GPT  # noqa: E402
from gepa.shards import BUNDLED_VAL_GLOB, load_validation_tokens  # noqa: E402
from gepa.tokenizer import BUNDLED_TOKENIZER, build_byte_luts, load_tokenizer  # noqa: E402
from gepa.valdata import ValData  # noqa: E402

REF = ROOT / "tests" / "data" / "reference_small"
SEED_SHAPE = {
    "model": {"num_layers": 2, "model_dim": 128, "num_heads": 4, "num_kv_heads": 2, "mlp_hidden": 384,
              "bigram_buckets": 256, "bigram_embed_dim": 32, "rope_dims": 16, "rope_train_seq_len": 128,
              "xsa_layers": 1, "ve_dim": 32, "ve_layers": [1]},
    "eval": {"mode": "ttt", "seq_len": 256, "stride": 8, "batch_seqs": 32},
    "ttt": {"chunk_tokens": 4096, "epochs": 10, "batch_seqs": 32, "freeze_blocks": 1, "fake_quant_int6": True},
}


def _cases():
    luts = build_byte_luts(load_tokenizer(BUNDLED_TOKENIZER), 1024)
    cfg = config.load(REF / "eval_ttt.json")
    yield "reference_small", cfg, build_model(cfg, clean.load_state_dict(codec.read_artifact(REF / "final_model.int6.ptz"))), \
        load_validation_tokens(str(REF / "fineweb_val_*.bin"), 256), luts
    cfg = config.from_dict(SEED_SHAPE)
    torch.manual_seed(0)
    model = GPT(cfg.model).eval()
    tokens = load_validation_tokens(BUNDLED_VAL_GLOB, 256)[: 6 * 4096 + 1].clone()
    yield "seed_shape_tiny", cfg, model, tokens, luts


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "eval_speed.json"))
    args = ap.parse_args()
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cases": {}}
    for name, cfg, model, tokens, luts in _cases():
        times: dict[str, list[float]] = {"plain": [], "fast": []}
        cpu: dict[str, list[float]] = {"plain": [], "fast": []}
        bpb = {}
        for _ in range(args.repeats):
            for impl in ("plain", "fast"):  # interleaved so load drift hits both alike
                m = copy.deepcopy(model)
                t0, c0 = time.perf_counter(), time.process_time()
                data = ValData(tokens=tokens, target_bytes=position_bytes(tokens, luts))
                r = FAMILY.evaluate(m, data, cfg, device=torch.device("cpu"), impl=impl)
                times[impl].append(time.perf_counter() - t0)
                cpu[impl].append(time.process_time() - c0)
                bpb[impl] = r.val_bpb
        med = {k: statistics.median(v) for k, v in times.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        ratio = med["plain"] / med["fast"]
        ratio_cpu = med_cpu["plain"] / med_cpu["fast"]
        report["cases"][name] = {"median_s": med, "all_s": times, "speedup": ratio, "median_cpu_s": med_cpu,
                                 "all_cpu_s": cpu, "speedup_cpu": ratio_cpu, "val_bpb": bpb,
                                 "bpb_abs_diff": abs(bpb["plain"] - bpb["fast"])}
        print(f"{name:16} plain {med['plain']:7.2f} s   fast {med['fast']:7.2f} s   speed-up {ratio:4.2f}x "
              f"(CPU seconds {med_cpu['plain']:.1f} / {med_cpu['fast']:.1f} = {ratio_cpu:4.2f}x)   "
              f"|dBPB| {abs(bpb['plain'] - bpb['fast']):.1e}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
