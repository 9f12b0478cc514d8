"""Make the march11l fixtures (tests/data/march11l_small) with the public reference code.

Development tool, never run by golfcheck. It imports two reference scripts that the caller
supplies (they are not in this repository):

- `--ref`: a March 11-layer record's `train_gpt.py` (2026-03-22_11L_EMA_GPTQ-lite_warmdown3500_
  QAT015_1.1233, or a copy holding at least its GPT classes, `mixed_quantize_int6`,
  `dequantize_mixed_int6`, `eval_val`, `eval_val_sliding` and the sentencepiece helpers);
- `--ref-ttt`: the 2026-03-23_LeakyReLU_LegalTTT_ParallelMuon `train_gpt.py` (or a copy holding
  its banked `GPT` classes, `_unbank_state_dict`, `_rebank_state_dict` and `eval_val_sliding_ttt`).

FlashAttention 3 is replaced by a directory (`--shim`) holding a `flash_attn_interface` module
with an fp32 SDPA `flash_attn_func`, and `torch.compile` by the identity. For each case the
script builds a small model with the reference's own classes (the 03-22 ones for ReLU^2, the
03-23 banked ones for LeakyReLU(0.5)^2), perturbs every parameter (zero initialisations would
hide tensors) and trains it briefly with AdamW on text that is not in the validation shard, casts
it to the records' run layout (embedding tables bf16, the rest fp32), writes the artifact with
`mixed_quantize_int6` (banks unbanked first, as the 03-23 record exports) + zstd-22 or xz, reads
it back through `dequantize_mixed_int6` (and `_rebank_state_dict`) into a fresh reference model,
casts that to fp32 and runs the reference's evaluation functions on CPU. TTT runs with the
record's late-QAT flag on, as its run left it.

    python scripts/make_march11l_fixtures.py --ref /scratch/ref26/train_gpt.py \
        --ref-ttt /scratch/ref25/train_gpt.py --shim /scratch/shim --out tests/data/march11l_small
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import lzma
import sys
import types
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
import zstandard

ROOT = Path(__file__).resolve().parents[1]
VAL_SOURCE = ROOT / "tests/data/reference_small/fineweb_val_000000.bin"
TRAIN_TEXT = ROOT / "gepa/assets/fineweb_val_sample_200docs.jsonl"
TOKENIZER = ROOT / "gepa/assets/fineweb_1024_bpe.model"
VAL_TOKENS = 12_289          # the fixture shard: the first 12,289 tokens of reference_small's
SEQ_LEN, STRIDE = 256, 64
NTK_SEQ_LEN = 1280  # above the rotary's train length 1024: the NTK-rescaled base the records use at T=2048
BASE = dict(vocab_size=1024, num_layers=4, model_dim=160, num_heads=4, num_kv_heads=2, mlp_mult=3.0,
            tie_embeddings=True, tied_embed_init_std=0.005, logit_softcap=30.0, rope_base=10000.0,
            qk_gain_init=1.5, bigram_vocab_size=1536, bigram_dim=48, ve_dim=48, ve_layers="2,3")
# name -> (reference GPT switches, activation, compressor, evaluations)
VARIANTS = {
    "a": (dict(xsa_last_n=2, rope_dims=16, ln_scale=True, ve_enabled=True), "relu2", "zstd",
          ("standard", "sliding", "sliding_ntk")),
    "b": (dict(xsa_last_n=1, rope_dims=0, ln_scale=False, ve_enabled=False), "relu2", "zstd",
          ("standard", "sliding")),
    "c": (dict(xsa_last_n=4, rope_dims=16, ln_scale=True, ve_enabled=True), "leaky_relu2", "xz",
          ("standard", "sliding", "ttt", "ttt_freeze")),
}
FREEZE = {"ttt": 0, "ttt_freeze": 1}  # ttt_freeze: the banked models' block freezing (vectors only)
BANKS = ("qo_bank", "kv_bank", "mlp_up_bank", "mlp_down_bank")
TTT = dict(ttt_lr=0.002, ttt_epochs=2, ttt_chunk_tokens=2048, ttt_momentum=0.9, ttt_batch_seqs=4, ttt_grad_clip=1.0)


def _import(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)  # the caller's reference script (development only)
    return mod


def _patch_rotary(mod) -> None:
    """On CPU fp32 the rotary cache made while scoring (inference mode) is returned as is to TTT
    training, which autograd refuses; on CUDA the bf16 cast copies it. Copy it here too (same values)."""
    original = mod.Rotary.forward

    def forward(self, seq_len, device, dtype):
        cos, sin = original(self, seq_len, device, dtype)
        if cos.is_inference() and not torch.is_inference_mode_enabled():
            return cos.clone(), sin.clone()
        return cos, sin

    mod.Rotary.forward = forward


def _run_layout(mod, model):
    """The records' dtypes: .bfloat16(), banks and CastedLinear back to fp32, low-dim params fp32."""
    model = model.bfloat16()
    for name in BANKS:
        if hasattr(model, name):
            getattr(model, name).data = getattr(model, name).data.float()
    for m in model.modules():
        if isinstance(m, mod.CastedLinear):
            m.float()
    mod.restore_low_dim_params_to_fp32(model)
    return model


def _export(mod, model) -> dict:
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return mod._unbank_state_dict(sd, BASE["num_layers"]) if "qo_bank" in sd else sd


def _load(ref, mod, switches: dict, loaded: dict):
    """A fresh reference model in the run layout holding the artifact's weights, then fp32."""
    model = _run_layout(mod, mod.GPT(**BASE, **switches))
    template = model.state_dict()
    banked = "qo_bank" in template
    deq = ref.dequantize_mixed_int6(loaded["w"], loaded["m"],
                                    mod._unbank_state_dict(template, BASE["num_layers"]) if banked else template)
    if banked:
        deq = mod._rebank_state_dict(deq, BASE["num_layers"], template)
    model.load_state_dict(deq, strict=True)
    return model.float()


def _train_tokens(sp) -> torch.Tensor:
    docs = [json.loads(line)["text"] for line in TRAIN_TEXT.read_text().splitlines()[100:160]]
    ids = []
    for text in docs:
        ids += [1] + sp.encode(text)
    return torch.tensor(ids, dtype=torch.int64)


def _train(model, tokens: torch.Tensor, seed: int, steps: int = 120) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * (0.02 if p.ndim >= 2 else 0.1))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.0)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, tokens.numel() - SEQ_LEN - 1, (8,), generator=gen)
        idx = starts[:, None] + torch.arange(SEQ_LEN + 1)[None, :]
        chunk = tokens[idx]
        loss = model(chunk[:, :-1], chunk[:, 1:])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.eval()


def _write_shard(path: Path, tokens: np.ndarray) -> None:
    header = np.zeros(256, dtype="<i4")
    header[:3] = (20240520, 1, tokens.size)
    with path.open("wb") as fh:
        fh.write(header.tobytes())
        fh.write(tokens.astype("<u2").tobytes())


def _config(switches: dict, activation: str, mode: str) -> dict:
    """The golfcheck evaluation config of one case (the contract the family must reproduce)."""
    ve_layers = [int(v) for v in BASE["ve_layers"].split(",")]
    model = dict(vocab_size=BASE["vocab_size"], num_layers=BASE["num_layers"], model_dim=BASE["model_dim"],
                 num_heads=BASE["num_heads"], num_kv_heads=BASE["num_kv_heads"],
                 mlp_hidden=int(BASE["mlp_mult"] * BASE["model_dim"]), bigram_buckets=BASE["bigram_vocab_size"],
                 bigram_embed_dim=BASE["bigram_dim"], rope_dims=switches["rope_dims"], rope_base=BASE["rope_base"],
                 rope_train_seq_len=1024, ln_scale=switches["ln_scale"], xsa_layers=switches["xsa_last_n"],
                 ve_enabled=switches["ve_enabled"], ve_dim=BASE["ve_dim"],
                 ve_layers=ve_layers if switches["ve_enabled"] else [], logit_softcap=BASE["logit_softcap"],
                 qk_gain_init=BASE["qk_gain_init"], tie_embeddings=True, march11l_activation=activation,
                 # the reference model here is cast back to fp32 after .bfloat16(): bf16-rounded frequencies
                 march11l_rope_table="bf16_freqs")
    seq_len = NTK_SEQ_LEN if mode == "sliding_ntk" else SEQ_LEN
    freeze = FREEZE.get(mode, 0)
    mode = mode.removesuffix("_ntk").removesuffix("_freeze")
    cfg = {"family": "march11l", "model": model,
           "eval": {"mode": mode, "seq_len": seq_len, "stride": STRIDE, "batch_seqs": 8 if mode == "ttt" else 32,
                    "tail": "reference"}}
    if mode == "ttt":
        cfg["ttt"] = {"optimizer": "sgd", "lr": TTT["ttt_lr"], "epochs": TTT["ttt_epochs"],
                      "momentum": TTT["ttt_momentum"], "chunk_tokens": TTT["ttt_chunk_tokens"],
                      "freeze_blocks": freeze, "batch_seqs": TTT["ttt_batch_seqs"],
                      "grad_clip": TTT["ttt_grad_clip"], "lr_schedule": "cosine_across_chunks",
                      "fake_quant_int6": True}
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", type=Path, required=True)
    ap.add_argument("--ref-ttt", type=Path, required=True)
    ap.add_argument("--shim", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=ROOT / "tests/data/march11l_small")
    ap.add_argument("--configs-only", action="store_true", help="rewrite the eval_*.json files only")
    args = ap.parse_args()
    for name, (switches, activation, _, evals) in VARIANTS.items():
        where = args.out if name == "a" else args.out / "variants"
        where.mkdir(parents=True, exist_ok=True)
        for mode in evals:
            cfg_name = f"eval_{mode}.json" if name == "a" else f"eval_{name}_{mode}.json"
            (where / cfg_name).write_text(json.dumps(_config(switches, activation, mode), indent=1) + "\n")
    if args.configs_only:
        return
    sys.path.insert(0, str(args.shim))
    torch.compile = lambda fn=None, **kw: fn  # CPU fp32: run eagerly
    torch.set_num_threads(1)
    ref = _import(args.ref, "ref_march11l")
    ref_ttt = _import(args.ref_ttt, "ref_march11l_ttt")
    _patch_rotary(ref)
    _patch_rotary(ref_ttt)
    sp = spm.SentencePieceProcessor(model_file=str(TOKENIZER))
    args.out.mkdir(parents=True, exist_ok=True)
    shard = np.fromfile(VAL_SOURCE, dtype="<u2", offset=1024)[:VAL_TOKENS]
    _write_shard(args.out / "fineweb_val_000000.bin", shard)
    val_tokens = ref.load_validation_tokens(str(args.out / "fineweb_val_*.bin"), SEQ_LEN)
    luts = ref.build_sentencepiece_luts(sp, 1024, torch.device("cpu"))
    train_tokens = _train_tokens(sp)
    hp = types.SimpleNamespace(train_seq_len=SEQ_LEN, val_batch_size=524_288, eval_batch_seqs=32, **TTT)
    cpu = torch.device("cpu")
    expected: dict = {}
    for seed, (name, (switches, activation, compressor, evals)) in enumerate(VARIANTS.items()):
        torch.manual_seed(seed)
        mod = ref_ttt if activation == "leaky_relu2" else ref
        model = mod.GPT(**BASE, **switches)
        _train(model, train_tokens, seed)
        result, meta = ref.mixed_quantize_int6(_export(mod, _run_layout(mod, model)), {"mlp", "attn"})
        buf = io.BytesIO()
        torch.save({"w": result, "m": meta}, buf)
        raw = buf.getvalue()
        blob = zstandard.ZstdCompressor(level=22).compress(raw) if compressor == "zstd" else lzma.compress(raw, preset=6)
        # The first case is the folder's own artifact (the service test uploads it); the others
        # live under variants/.
        where = args.out if name == "a" else args.out / "variants"
        artifact = where / ("final_model.int6.ptz" if name == "a" else f"final_model_{name}.int6.ptz")
        artifact.write_bytes(blob)
        loaded = torch.load(io.BytesIO(zstandard.ZstdDecompressor().decompress(blob) if compressor == "zstd"
                                       else lzma.decompress(blob)), map_location="cpu")
        eval_model = _load(ref, mod, switches, loaded)
        out: dict = {"artifact": str(artifact.relative_to(args.out)), "bytes": len(blob), "compressor": compressor,
                     "activation": activation, "switches": switches,
                     "model_code": "2026-03-23 (banked)" if mod is ref_ttt else "2026-03-22"}
        # eval_val and eval_val_sliding are the same functions in both scripts
        if "standard" in evals:
            out["standard"] = ref.eval_val(hp, eval_model, 0, 1, cpu, 8, val_tokens, *luts, eval_seq_len=SEQ_LEN)
        if "sliding" in evals:
            out["sliding"] = ref.eval_val_sliding(hp, eval_model, 0, 1, cpu, val_tokens, *luts, stride=STRIDE,
                                                  batch_seqs=32, eval_seq_len=SEQ_LEN)
        if "sliding_ntk" in evals:
            # loaded as the records load it for this length: cut to a multiple of the window
            ntk_tokens = ref.load_validation_tokens(str(args.out / "fineweb_val_*.bin"), NTK_SEQ_LEN)
            out["sliding_ntk"] = ref.eval_val_sliding(hp, eval_model, 0, 1, cpu, ntk_tokens, *luts, stride=STRIDE,
                                                      batch_seqs=32, eval_seq_len=NTK_SEQ_LEN)
        for ttt_name, freeze in FREEZE.items():
            if ttt_name not in evals:
                continue
            ttt_model = _load(ref, mod, switches, loaded)  # TTT changes the weights: a fresh copy each
            mod.CastedLinear._qat_enabled = True  # late QAT fired in the record's run and stays on
            lines: list[str] = []
            args_ttt = types.SimpleNamespace(**vars(hp), ttt_freeze_blocks=freeze)
            out[ttt_name] = ref_ttt.eval_val_sliding_ttt(args_ttt, ttt_model, 0, 1, cpu, val_tokens, *luts,
                                                         stride=STRIDE, batch_seqs=8, log0=lines.append)
            out[ttt_name + "_log"] = [ln for ln in lines if "time=" not in ln and "elapsed=" not in ln]
            mod.CastedLinear._qat_enabled = False
        expected[name] = out
        print(name, {k: v for k, v in out.items() if k in ("standard", "sliding", "ttt", "bytes")}, flush=True)
    doc = {"standard": expected["a"]["standard"], "sliding": expected["a"]["sliding"], "cases": expected,
           "note": "[val_loss, val_bpb] from the reference's eval_val / eval_val_sliding / eval_val_sliding_ttt"}
    (args.out / "expected.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
