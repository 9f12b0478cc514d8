"""Evaluator commands of `golfcheck`: evaluate, inspect, make-artifact.

Registered by the dispatcher in `api/cli.py`. Input problems raise `InputError` (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gepa import config as config_mod
from gepa.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score an artifact: standard, sliding-window or legal score-first TTT BPB",
                       description="Score an artifact on validation shards exactly as the reference does.")
    p.add_argument("artifact", help="final_model.int6.ptz (zstd or zlib container)")
    p.add_argument("--config", help="evaluation config JSON (default: the seed submission's settings)")
    p.add_argument("--val", help="glob of validation shards (default: the bundled 200-document sample)")
    p.add_argument("--tokenizer", help="SentencePiece .model (default: the bundled sp1024 tokenizer)")
    p.add_argument("--mode", choices=config_mod.MODES, help="override eval.mode from the config")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--max-tokens", type=int, help="score only the first N validation targets (demos, smoke tests)")
    p.add_argument("--impl", choices=("fast", "plain"), default="fast", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("inspect", help="describe an artifact: format, tensors, schemes, inferred config")
    p.add_argument("artifact")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("make-artifact", help="write a small GEPA artifact (random init or a few training steps)")
    p.add_argument("out", help="output path, e.g. final_model.int6.ptz")
    p.add_argument("--config", required=True, help="evaluation config JSON whose model section to build")
    p.add_argument("--steps", type=int, default=0, help="training steps on --data (default 0: random init)")
    p.add_argument("--data", help="JSONL of {\"text\": ...} documents (default: the bundled sample)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--compression", choices=("zstd", "zlib"), default="zstd")
    p.set_defaults(func=cmd_make_artifact)


def _load_config(path: str | None, mode: str | None = None) -> config_mod.EvalConfig:
    cfg = config_mod.load(path) if path else config_mod.DEFAULT
    return cfg.with_mode(mode)


def _progress(total_chunks: int | None, enabled: bool):
    """A tqdm bar on stderr fed by per-chunk records; a no-op when stdout is the JSON channel."""
    if not enabled:
        return None, lambda rec: None
    from tqdm import tqdm

    bar = tqdm(total=total_chunks, unit="chunk", file=sys.stderr, dynamic_ncols=True, leave=False)

    def on_chunk(rec) -> None:
        bar.update(1)
        bar.set_postfix(bpb=f"{rec.running_bpb:.5f}", refresh=False)

    return bar, on_chunk


def cmd_evaluate(args: argparse.Namespace) -> int:
    from gepa.evaluate import count_chunks, run_evaluation
    from gepa.shards import BUNDLED_VAL_GLOB
    from gepa.tokenizer import BUNDLED_TOKENIZER

    cfg = _load_config(args.config, args.mode)
    if args.max_tokens is not None and args.max_tokens < 1:
        raise InputError("--max-tokens must be a positive number of targets")
    artifact = Path(args.artifact)
    if not artifact.is_file():
        raise InputError(f"artifact {artifact} does not exist or is not a file")
    val = args.val or BUNDLED_VAL_GLOB
    tok = args.tokenizer or BUNDLED_TOKENIZER
    bar, on_chunk = _progress(None, enabled=not args.json and sys.stderr.isatty())
    if bar is not None:
        bar.total = count_chunks(cfg, val, max_tokens=args.max_tokens)
    try:
        result = run_evaluation(artifact, cfg, val_glob=val, tokenizer=tok, device=args.device,
                                on_chunk=on_chunk, max_tokens=args.max_tokens, impl=args.impl)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(f"mode           {result.mode}")
    print(f"val_loss       {result.val_loss:.8f}")
    print(f"val_bpb        {result.val_bpb:.8f}")
    print(f"tokens_scored  {result.tokens_scored:,} (of {result.total_targets:,} targets)")
    print(f"bytes_scored   {result.bytes_scored:,}")
    print(f"elapsed        {result.elapsed_s:.1f} s on {result.device}")
    if result.mode == "ttt":
        trained = sum(1 for c in result.chunks if c.train_seconds > 0)
        print(f"chunks         {len(result.chunks)} scored, {trained} trained on after scoring")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from gepa import codec
    from gepa.infer import infer_model_config

    art = codec.read_artifact(args.artifact)
    codec.validate_container(art.container)
    info = codec.describe(art)
    info["inferred_model"] = infer_model_config(codec.dequantize(art.container))
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"format        {info['format']}  ({info['compression']})")
    print(f"bytes         {info['compressed_bytes']:,} compressed, {info['decompressed_bytes']:,} decompressed")
    print(f"tensors       {info['n_quantized']} quantized, {info['n_passthrough']} passthrough")
    print()
    width = max(len(r["name"]) for r in info["tensors"])
    print(f"{'name':<{width}}  {'shape':<14} {'scheme':<17} {'bytes':>10}")
    for r in info["tensors"]:
        shape = "x".join(map(str, r["shape"])) or "()"
        print(f"{r['name']:<{width}}  {shape:<14} {r['scheme']:<17} {r['stored_bytes']:>10,}")
    print()
    for scheme, tot in sorted(info["totals"].items()):
        print(f"{scheme:<17} {tot['tensors']:>4} tensors {tot['params']:>12,} params {tot['stored_bytes']:>12,} bytes")
    print()
    print("inferred model config:", json.dumps(info["inferred_model"]))
    return 0


def cmd_make_artifact(args: argparse.Namespace) -> int:
    from gepa.train import make_artifact

    cfg = config_mod.load(args.config)
    if args.steps < 0:
        raise InputError("--steps must be 0 or more")
    n = make_artifact(args.out, cfg, steps=args.steps, data=args.data, seed=args.seed, lr=args.lr,
                      compression=args.compression, log=lambda m: print(m, file=sys.stderr))
    print(f"wrote {args.out}: {n:,} bytes")
    return 0
