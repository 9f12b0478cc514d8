"""GPU (or CPU) evaluation throughput for the seed configuration, projected to the full
62,021,632-token validation set.

Runs score-first TTT with the seed config on random weights over a measured prefix of the
validation stream (default: 3 chunks), then reports scoring and TTT-training tokens/s, achieved
FLOP/s and MFU (FLOP model in gepa/flops.py), peak memory, and the projected full-evaluation
time. Writes a JSON result.

    .venv/bin/python bench/gpu_eval.py --device cuda --chunks 4 --out bench/results/gpu_eval.json
    .venv/bin/python bench/gpu_eval.py --device cpu --chunks 2 --seq-len 2048   # slow, CPU sanity
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gepa.bpb import position_bytes  # noqa: E402
from gepa.families.gepa import config  # noqa: E402
from gepa.families.gepa.family import FAMILY  # noqa: E402
from gepa.families.gepa.flops import eval_flops  # noqa: E402
from gepa.families.gepa.model import GPT  # noqa: E402
from gepa.flops import DEVICE_CALIBRATION  # noqa: E402
from gepa.shards import BUNDLED_VAL_GLOB, load_validation_tokens  # noqa: E402
from gepa.tokenizer import BUNDLED_TOKENIZER, build_byte_luts, load_tokenizer  # noqa: E402
from gepa.valdata import ValData  # noqa: E402

FULL_TARGETS = 62_021_632


def _device_kind(device: str) -> str:
    if device != "cuda":
        return "cpu"
    name = torch.cuda.get_device_name().lower()
    return next((k for k in DEVICE_CALIBRATION if k in name), "h200")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--chunks", type=int, default=3, help="TTT chunks to measure (first is warm-up)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--chunk-tokens", type=int, help="override ttt.chunk_tokens (CPU smoke runs)")
    ap.add_argument("--seq-len", type=int, help="override eval.seq_len (CPU smoke runs; changes the FLOP mix)")
    ap.add_argument("--out", default="bench/results/gpu_eval.json")
    args = ap.parse_args()

    cfg = config.DEFAULT
    seq_len = args.seq_len or cfg.eval.seq_len
    cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, seq_len=seq_len),
                              ttt=dataclasses.replace(cfg.ttt, epochs=args.epochs,
                                                      chunk_tokens=args.chunk_tokens or cfg.ttt.chunk_tokens))
    config.validate(cfg)
    luts = build_byte_luts(load_tokenizer(BUNDLED_TOKENIZER), cfg.model.vocab_size)
    stream = load_validation_tokens(BUNDLED_VAL_GLOB, cfg.eval.seq_len)
    need = args.chunks * cfg.ttt.chunk_tokens + 1
    reps = -(-need // stream.numel())
    tokens = stream.repeat(reps)[:need].clone()  # the sample is smaller than a few chunks: tile it

    torch.manual_seed(0)
    model = GPT(cfg.model).to(args.device)
    if args.device == "cuda":
        model.reference_dtypes()
        torch.cuda.reset_peak_memory_stats()
    records = []
    t0 = time.perf_counter()
    data = ValData(tokens=tokens, target_bytes=position_bytes(tokens, luts))
    result = FAMILY.evaluate(model, data, cfg, device=torch.device(args.device), on_chunk=records.append)
    wall = time.perf_counter() - t0
    steady = records[1:] if len(records) > 1 else records  # chunk 0 pays for warm-up
    total = tokens.numel() - 1
    fl = eval_flops(cfg, total)
    per_chunk_windows = sum(r.windows for r in steady)
    score_s = sum(r.score_seconds for r in steady)
    trained = [r for r in steady if r.train_seconds > 0]
    train_s = sum(r.train_seconds for r in trained)
    score_flops = fl.score * per_chunk_windows / max(fl.windows, 1)
    train_tokens = len(trained) * cfg.ttt.chunk_tokens * cfg.ttt.epochs
    train_flops = fl.train * train_tokens / max(fl.trained_tokens, 1)
    score_rate = score_flops / score_s if score_s else float("nan")
    train_rate = train_flops / train_s if train_s else float("nan")
    full = eval_flops(cfg, FULL_TARGETS)
    projected = full.score / score_rate + (full.train / train_rate if train_s else 0.0)
    kind = _device_kind(args.device)
    peak = DEVICE_CALIBRATION[kind]["peak_flops"]
    out = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu",
        "device_kind": kind, "torch": torch.__version__, "measured_chunks": len(steady),
        "score_tokens_per_s": per_chunk_windows * cfg.eval.seq_len / score_s if score_s else None,
        "scored_targets_per_s": sum(r.tokens_scored for r in steady) / score_s if score_s else None,
        "train_tokens_per_s": train_tokens / train_s if train_s else None,
        "score_flops_per_s": score_rate, "train_flops_per_s": train_rate,
        "mfu_score": score_rate / peak, "mfu_train": train_rate / peak,
        "mfu_overall": (full.score + full.train) / projected / peak,
        "projected_full_seconds": projected, "full_flops": full.total,
        "peak_memory_bytes": torch.cuda.max_memory_allocated() if args.device == "cuda" else None,
        "wall_seconds": wall, "val_bpb_random_weights": result.val_bpb,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    for k, v in out.items():
        print(f"{k:26} {v:.4g}" if isinstance(v, float) else f"{k:26} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
