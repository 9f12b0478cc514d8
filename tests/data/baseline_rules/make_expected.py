"""Regenerate the baseline_rules fixtures: artifacts written by three March records' own
quantizers and the numbers their own sliding-window functions return.

Run outside the test suite, with the records' `train_gpt.py` files (public reference code, never
committed here) given by path; each is imported as a module (its `main()` is not run) and only its
own functions are called:

    python tests/data/baseline_rules/make_expected.py \
        --mlp3x      <records/track_10min_16mb/2026-03-19_MLP3x_QAT_Int6_SlidingWindow/train_gpt.py> \
        --mixedquant <records/track_10min_16mb/2026-03-19_MixedQuant_Int6Int8_SlidingWindow/train_gpt.py> \
        --seq2048    <records/track_10min_16mb/2026-03-19_Seq2048_FP16Emb_TunedLR/train_gpt.py>

The weights are those of `tests/data/baseline_small/final_model.int8.ptz` (a 3-layer x 192 baseline
GPT trained on FineWeb), dequantized by the reference's own function and re-exported by each
record's quantizer and compressor; `mlp3x_11l` is an 11-layer MLP-3x model with seeded random
weights, to show the odd-depth, MLP-3x layout of row 32. Everything runs on CPU in fp32 with one
thread (the records' CUDA autocast blocks switch themselves off).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import inspect
import io
import json
import os
import platform
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import sentencepiece as spm
import torch
import zstandard

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SOURCE = ROOT / "tests" / "data" / "baseline_small" / "final_model.int8.ptz"
VAL = ROOT / "tests" / "data" / "baseline_small" / "fineweb_val_000000.bin"
TOKENIZER = ROOT / "gepa" / "assets" / "fineweb_1024_bpe.model"
SMALL = dict(vocab_size=1024, num_layers=3, model_dim=192, num_heads=6, num_kv_heads=2, mlp_mult=3)
DEEP = dict(vocab_size=1024, num_layers=11, model_dim=32, num_heads=4, num_kv_heads=2, mlp_mult=3)
RECORDS = {
    "mlp3x": "records/track_10min_16mb/2026-03-19_MLP3x_QAT_Int6_SlidingWindow/train_gpt.py",
    "mixedquant": "records/track_10min_16mb/2026-03-19_MixedQuant_Int6Int8_SlidingWindow/train_gpt.py",
    "seq2048": "records/track_10min_16mb/2026-03-19_Seq2048_FP16Emb_TunedLR/train_gpt.py",
}


def load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(f"ref_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build(mod, shape: dict, state: dict | None, rope: str, seed: int = 0):
    kw = dict(vocab_size=shape["vocab_size"], num_layers=shape["num_layers"], model_dim=shape["model_dim"],
              num_heads=shape["num_heads"], num_kv_heads=shape["num_kv_heads"], tie_embeddings=True,
              tied_embed_init_std=0.005, logit_softcap=30.0, rope_base=10000.0, qk_gain_init=1.5)
    if "mlp_hidden" in inspect.signature(mod.GPT).parameters:
        kw["mlp_hidden"] = shape["mlp_mult"] * shape["model_dim"]
    else:
        kw["mlp_mult"] = shape["mlp_mult"]
    model = mod.GPT(**kw).float()
    if state is None:  # seeded random weights (every tensor, so no block is an identity)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.ndim == 2:
                    p.copy_(torch.randn(p.shape, generator=gen) * (0.05 if "tok_emb" in name else 0.02))
                else:
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            model.tok_emb.weight.data = model.tok_emb.weight.data.bfloat16().float()
    else:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    for m in model.modules():
        if m.__class__.__name__ == "Rotary":
            # fp32: as an fp32-built module computes it; bf16: as the records' `.bfloat16()` left it.
            m.inv_freq = m.inv_freq.bfloat16() if rope == "bf16" else m.inv_freq.float()
            m._cos_cached = m._sin_cached = None
            m._seq_len_cached = 0
    return model.eval()


def write_artifact(mod, name: str, state: dict, out: Path, compressor: str, file_name: str) -> dict:
    if name == "mlp3x":  # the README's run: FP16_EMBED_EXPORT=1 INT6_LAYER_START=0 INT6_LAYER_END=L-1
        layers = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
        obj, _ = mod.quantize_state_dict_int8(state, fp16_embed=True, int6_layer_start=0, int6_layer_end=layers - 1)
    else:
        obj, _ = mod.quantize_state_dict_int8(state)
    buf = io.BytesIO()
    torch.save(obj, buf)
    raw = buf.getvalue()
    blob = zstandard.ZstdCompressor(level=22).compress(raw) if compressor == "zstd-22" else zlib.compress(raw, level=9)
    out.mkdir(parents=True, exist_ok=True)
    (out / file_name).write_bytes(blob)
    q = {k: [int(v.min()), int(v.max())] for k, v in obj["quantized"].items()}
    return {"file": file_name, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(), "compressor": compressor,
            "quantized_value_range": q, "passthrough": sorted(obj["passthrough"]),
            "passthrough_orig_dtypes": obj.get("passthrough_orig_dtypes", {})}


def read_back(mod, path: Path, compressor: str) -> dict:
    blob = path.read_bytes()
    raw = zstandard.ZstdDecompressor().decompress(blob) if compressor == "zstd-22" else zlib.decompress(blob)
    return mod.dequantize_state_dict_int8(torch.load(io.BytesIO(raw), map_location="cpu"))


def run_rule(name: str, mod, model, seq_len: int, stride: int, luts) -> tuple[float, float]:
    cpu = torch.device("cpu")
    val = mod.load_validation_tokens(str(VAL), seq_len)
    if name == "mlp3x":
        args = SimpleNamespace(eval_seq_len=0, train_seq_len=seq_len, eval_stride=stride, eval_batch_size=32)
        return mod.eval_val_sliding(args, model, 0, 1, cpu, val, *luts)
    if name == "mixedquant":
        args = SimpleNamespace(train_seq_len=seq_len)
        return mod.eval_val_sliding_window(args, model, 0, 1, cpu, val, *luts, stride=stride)
    return mod.eval_val_sliding(model, 0, 1, cpu, val, *luts, eval_seq_len=seq_len, stride=stride)


def run_standard(mod, model, seq_len: int, luts) -> tuple[float, float]:
    args = SimpleNamespace(val_batch_size=64 * seq_len, train_seq_len=seq_len)
    val = mod.load_validation_tokens(str(VAL), seq_len)
    return mod.eval_val(args, model, 0, 1, torch.device("cpu"), 1, val, *luts)


# folder -> (record module, weights, compressor, file name, {case: (seq_len, stride, rope tables)})
CASES = {
    "mlp3x": ("mlp3x", SMALL, "zstd-22", "final_model.int8.ptz", {
        "sliding_last_stride": (128, 64, "fp32"),
        "sliding_last_stride_rope_bf16": (128, 64, "bf16"),
        "sliding_last_stride_s48": (128, 48, "fp32")}),
    "mlp3x_11l": ("mlp3x", DEEP, "zstd-22", "final_model.int8.ptz", {
        "sliding_last_stride_rope_bf16": (128, 64, "bf16")}),
    "mixedquant": ("mixedquant", SMALL, "zlib-9", "final_model.int6.ptz", {
        "sliding_last_stride_rope_bf16": (128, 64, "bf16"),
        "sliding_last_stride_s32": (128, 32, "fp32")}),
    "seq2048": ("seq2048", SMALL, "zstd-22", "final_model.int8.ptz", {
        "sliding_gap_after_first": (128, 32, "fp32"),
        "sliding_gap_after_first_t256_rope_bf16": (256, 64, "bf16"),
        "sliding_gap_after_first_s48": (128, 48, "fp32"),
        "sliding_gap_after_first_s64": (128, 64, "fp32")}),
}


def config(shape: dict, seq_len: int, stride: int, rope: str, tail: str | None) -> dict:
    model = {"vocab_size": shape["vocab_size"], "num_layers": shape["num_layers"], "model_dim": shape["model_dim"],
             "num_heads": shape["num_heads"], "num_kv_heads": shape["num_kv_heads"],
             "mlp_hidden": shape["mlp_mult"] * shape["model_dim"], "rope_base": 10000.0, "logit_softcap": 30.0,
             "tie_embeddings": True, "baseline_rope_tables": rope}
    ev = {"mode": "sliding" if tail else "standard", "seq_len": seq_len, "stride": stride, "batch_seqs": 32,
          "tail": tail or "reference", "baseline_val_batch_seqs": 64}
    return {"family": "baseline", "model": model, "eval": ev}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in RECORDS:
        ap.add_argument(f"--{name}", required=True, type=Path, help=f"path to {RECORDS[name]}")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    mods = {name: load_module(name, getattr(args, name)) for name in RECORDS}
    source = mods["mlp3x"].dequantize_state_dict_int8(
        torch.load(io.BytesIO(zlib.decompress(SOURCE.read_bytes())), map_location="cpu"))
    sp = spm.SentencePieceProcessor(model_file=str(TOKENIZER))
    for folder, (rec, shape, compressor, file_name, cases) in CASES.items():
        mod = mods[rec]
        luts = mod.build_sentencepiece_luts(sp, 1024, torch.device("cpu"))
        out = HERE / folder
        if shape is SMALL:
            state = source
        else:
            random_model = build(mod, shape, None, "fp32", seed=11)
            state = {k: v.detach().clone() for k, v in random_model.state_dict().items()}
            state["tok_emb.weight"] = state["tok_emb.weight"].bfloat16()  # as the records' bf16 embedding
        art = write_artifact(mod, rec, state, out, compressor, file_name)
        loaded = read_back(mod, out / file_name, compressor)
        results, expected_cases = {}, {}
        model = build(mod, shape, loaded, "fp32")
        results["standard"] = list(run_standard(mod, model, 128, luts))
        expected_cases["standard"] = config(shape, 128, 64, "fp32", None)
        tail = "last_stride" if rec in ("mlp3x", "mixedquant") else "gap_after_first"
        for case, (seq_len, stride, rope) in cases.items():
            model = build(mod, shape, loaded, rope)
            results[case] = list(run_rule(rec, mod, model, seq_len, stride, luts))
            again = list(run_rule(rec, mod, build(mod, shape, loaded, rope), seq_len, stride, luts))
            assert again == results[case], f"{folder}/{case} is not deterministic"
            expected_cases[case] = config(shape, seq_len, stride, rope, tail)
        for case, cfg in expected_cases.items():
            (out / f"eval_{case}.json").write_text(json.dumps(cfg, indent=1) + "\n")
        ref_sha = hashlib.sha256(getattr(args, rec).read_bytes()).hexdigest()
        expected = {"family": "baseline", "record": RECORDS[rec], "reference_sha256": ref_sha,
                    "rule": tail, "artifact": art, "model_config": shape,
                    "val": {"file": "../baseline_small/fineweb_val_000000.bin"},
                    "environment": {"python": platform.python_version(), "torch": torch.__version__, "threads": 1},
                    "invocation": " ".join(["python", "tests/data/baseline_rules/make_expected.py"] +
                                           [f"--{n} <{RECORDS[n]}>" for n in RECORDS]),
                    "results": results}
        (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
        print(folder, json.dumps(results))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
