"""Evaluator commands of `golfcheck`: evaluate, inspect, make-artifact.

Registered by the dispatcher in `api/cli/main.py`. Input problems raise `InputError` (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from gepa import codec, families, runner
from gepa.errors import InputError
from gepa.families.gepa import config as gepa_config
from gepa.families.gepa.train import make_artifact
from gepa.shards import fingerprint, shard_paths, shard_token_count

MODES = sorted({m for f in families.registry().values() for m in f.modes})


def register(sub: argparse._SubParsersAction) -> None:
    fams = ", ".join(families.names())
    p = sub.add_parser("evaluate", help="score an artifact exactly as its family's reference does",
                       description=f"Score an artifact on validation shards exactly as the reference does. "
                                   f"Families: {fams} (detected from the artifact unless the config names one).")
    p.add_argument("artifact", help="the submitted artifact, e.g. final_model.int6.ptz")
    p.add_argument("--config", help="evaluation config JSON (default: the model inferred from the artifact's "
                                    "tensors with its family's record settings; `inspect --json` prints it)")
    p.add_argument("--val", help="glob of validation shards (default: the family's bundled 200-document sample; "
                                  "names containing _bytes_ (CaseOps byte sidecars) are skipped)")
    p.add_argument("--tokenizer", help="SentencePiece .model (default: the family's bundled tokenizer)")
    p.add_argument("--sidecar", help="glob of a submitted per-token byte sidecar to compare against (CaseOps)")
    p.add_argument("--mode", choices=MODES, help="override eval.mode from the config")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--max-tokens", type=int, help="score only the first N validation targets (demos, smoke "
                                                  "tests; never a verified score)")
    p.add_argument("--impl", choices=("fast", "plain"), default="fast", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("fingerprint", help="sha256 and token count of a set of validation shards (the value of "
                                           "GOLFCHECK_CANONICAL_VAL_SHA256 for the canonical set)")
    p.add_argument("val", help="glob of validation shards, e.g. 'data/fineweb10B_sp1024/fineweb_val_*.bin'")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_fingerprint)

    p = sub.add_parser("inspect", help="describe an artifact: family, container, tensors, a config to evaluate it")
    p.add_argument("artifact")
    p.add_argument("--json", action="store_true", help="one JSON object; its `config` is accepted by evaluate as is")
    p.add_argument("--print-config", action="store_true", help="print only the inferred config JSON (save it as "
                                                               "eval.json and edit what the tensors cannot show)")
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


def _progress(enabled: bool):
    """A tqdm bar on stderr fed by per-chunk records; a no-op when stdout is the JSON channel."""
    if not enabled:
        return None, None
    bar = tqdm(total=None, unit="chunk", file=sys.stderr, dynamic_ncols=True, leave=True)

    def on_chunk(rec) -> None:
        # Redraw on every chunk: tqdm's rate limit would otherwise leave the bar showing the previous
        # chunk's BPB (chunks are few, so drawing each is cheap), and the last one stays on screen.
        bar.set_postfix(bpb=f"{rec.running_bpb:.5f}", refresh=False)
        bar.update(1)
        bar.refresh()

    return bar, on_chunk


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.max_tokens is not None and args.max_tokens < 1:
        raise InputError("--max-tokens must be a positive number of targets")
    artifact = Path(args.artifact)
    if not artifact.is_file():
        raise InputError(f"artifact {artifact} does not exist or is not a file")
    prep = runner.prepare(artifact, args.config, mode=args.mode)
    bar, on_chunk = _progress(enabled=not args.json and sys.stderr.isatty())
    if bar is not None:
        bar.total = runner.count_chunks(prep, args.val, max_tokens=args.max_tokens) or None  # 0: unknown
    try:
        result = runner.run_prepared(prep, val_glob=args.val, tokenizer=args.tokenizer, sidecar_glob=args.sidecar,
                                     device=args.device, on_chunk=on_chunk, max_tokens=args.max_tokens, impl=args.impl)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        # `demo`: a cut run (--max-tokens) is a demo figure, never a verified score.
        print(json.dumps({**result.to_dict(), "demo": result.max_tokens is not None}))
        return 0
    named = args.config and "family" in (runner.read_config(args.config) or {})
    print(f"family         {result.family} ({'named by the config' if named else 'detected from the artifact'}): "
          f"{prep.family.title}")
    if prep.inferred:
        print(f"config         none given: model inferred from the tensors, evaluation settings are the "
              f"{prep.family.name} family's record defaults (`golfcheck inspect --print-config` shows them)")
    unrecorded = _unrecorded(prep)
    if unrecorded:
        print(f"unchecked      {unrecorded}: the weights do not record these, so they come from the config (or the "
              f"defaults) and must match the training run")
    print(f"mode           {result.mode}")
    print(f"val_loss       {result.val_loss:.8f}")
    print(f"val_bpb        {result.val_bpb:.8f}")
    repeats = result.tokens_scored - result.total_targets
    note = (f" (more than the targets: the reference's trailing windows score the last {repeats:,} targets a "
            f"second time; eval.tail \"exact_once\" scores each once)") if repeats > 0 else ""
    print(f"tokens_scored  {result.tokens_scored:,} of {result.total_targets:,} targets{note}")
    if result.unscored_targets:
        print(f"UNSCORED       {result.unscored_targets:,} targets were never scored: not a full-coverage score")
    print(f"bytes_scored   {result.bytes_scored:,}")
    for key, value in result.extra.items():
        if isinstance(value, dict) and value.get("unscored_targets"):  # a compared window rule with gaps
            print(f"{key:<14} the config's rule leaves {value['unscored_targets']:,} targets unscored: val_bpb above "
                  f"scores every target once; the rule's own figure below is for comparison only")
        if isinstance(value, dict):  # e.g. caseops_bytes: one line per figure
            for sub_key, sub_value in value.items():
                print(f"{key + '.' + sub_key:<44} {sub_value}")
        else:
            print(f"{key:<14} {value}")
    print(f"validation     {result.val_tokens:,} tokens, sha256 {result.val_sha256[:16]}…")
    if result.max_tokens is not None:
        print(f"DEMO           cut to the first {result.max_tokens:,} targets (--max-tokens): a demo figure, "
              "not a verified score")
    print(f"elapsed        {result.elapsed_s:.1f} s on {result.device}")
    trained = sum(1 for c in result.chunks if c.train_seconds > 0)
    if trained:
        print(f"chunks         {len(result.chunks)} scored, {trained} trained on after scoring")
    return 0


def _unrecorded(prep: runner.Prepared) -> str:
    model = getattr(prep.cfg, "model", None)
    keys = getattr(prep.family, "unrecorded_model_keys", ())
    return ", ".join(f"model.{k}={json.dumps(getattr(model, k))}" for k in keys if hasattr(model, k))


def cmd_fingerprint(args: argparse.Namespace) -> int:
    paths = shard_paths(args.val)
    out = {"val_sha256": fingerprint(paths), "shards": len(paths),
           "tokens": sum(shard_token_count(p) for p in paths)}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['val_sha256']}  {out['shards']} shard(s), {out['tokens']:,} tokens")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    art = codec.read_artifact(args.artifact)
    family = families.detect(art)
    info = {"family": family.name, "family_title": family.title, **family.describe(art)}
    info["config"] = family.infer_config(art)
    family.parse_config(info["config"])  # what we print must be accepted as is
    if args.print_config:
        print(json.dumps(info["config"], indent=1))
        return 0
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"family        {family.name}: {family.title}")
    print(f"container     {info['kind']} ({info['format']}), {info['compression']}")
    print(f"bytes         {info['compressed_bytes']:,} compressed, {info['decompressed_bytes']:,} decompressed")
    print(f"sha256        {info['sha256']}")
    print(f"tensors       {info['n_tensors']}")
    print()
    width = max(len(r["name"]) for r in info["tensors"])
    print(f"{'name':<{width}}  {'shape':<14} {'scheme':<19} {'bytes':>10}")
    for r in info["tensors"]:
        shape = "x".join(map(str, r["shape"])) or "()"
        print(f"{r['name']:<{width}}  {shape:<14} {r['scheme']:<19} {r['stored_bytes']:>10,}")
    print()
    for scheme, tot in sorted(info["totals"].items()):
        print(f"{scheme:<19} {tot['tensors']:>4} tensors {tot['params']:>12,} params {tot['stored_bytes']:>12,} bytes")
    print()
    print("config (model from the tensors, the rest the family's record defaults; save with --print-config):")
    print(json.dumps(info["config"]))
    return 0


def cmd_make_artifact(args: argparse.Namespace) -> int:
    cfg = gepa_config.load(args.config)
    if args.steps < 0:
        raise InputError("--steps must be 0 or more")
    n = make_artifact(args.out, cfg, steps=args.steps, data=args.data, seed=args.seed, lr=args.lr,
                      compression=args.compression, log=lambda m: print(m, file=sys.stderr))
    print(f"wrote {args.out}: {n:,} bytes")
    return 0
