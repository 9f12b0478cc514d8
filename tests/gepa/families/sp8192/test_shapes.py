"""An sp8192 artifact of the 04-05 record's shape, shrunk (loop 4-5 twice, no parallel residuals,
int6 c_q because d^2 > 65,536, xz instead of brotli, 512-token windows): written here
in the container layout of spec §3 from a random model, then detected, inferred, loaded and
scored. No reference number exists for it; it checks that the whole path handles the shapes the
published fixture does not (the hidden fixtures do), and that the state round-trips exactly."""

from __future__ import annotations

import io
import json
import lzma

import pytest
import torch

from gepa import codec, compress, families, runner
from gepa.families.sp8192 import config as scfg
from gepa.families.sp8192.family import FAMILY, build_model
from gepa.families.sp8192.model import GPT
from tests.support.paths import REPO

ROOT = REPO
FIX = ROOT / "tests" / "data" / "sp8192_small"
TOKENIZER = ROOT / "gepa" / "assets" / "fineweb_8192_bpe.model"
RAW = {
    "family": "sp8192",
    "model": {"num_layers": 6, "model_dim": 272, "num_heads": 4, "num_kv_heads": 2, "qk_gain_init": 4.0,
              "sp8192_mlp_mult": 2.0,
              "sp8192_xsa_last_n": 6, "sp8192_num_loops": 2, "sp8192_loop_start": 4, "sp8192_loop_end": 5,
              "sp8192_parallel_residual_start": -1, "sp8192_rotary_train_seq_len": 512,
              "sp8192_compressor": "lzma"},
    "eval": {"mode": "sliding", "seq_len": 512, "stride": 256, "batch_seqs": 8},
    "ttt": {"chunk_tokens": 1024, "epochs": 1, "batch_seqs": 2},
}


def _container(model: GPT) -> dict:
    """The reference's layout: > 65,536 elements -> per-row int8 q (int8 range for tok_emb, int6
    otherwise) + fp16 scale; everything else fp16 passthrough."""
    w, m = {}, {}
    for name, t in model.state_dict().items():
        t = t.detach().float()
        if t.numel() <= 65536:
            w[name], m[name] = t.half(), "passthrough (float16)"
            continue
        rng = 127 if "tok_emb" in name else 31
        scale = (t.abs().amax(dim=1) / rng).clamp_min(1e-8).half()
        w[name + ".q"] = torch.clamp(torch.round(t / scale.float()[:, None]), -rng, rng).to(torch.int8)
        w[name + ".scale"] = scale
        m[name] = f"gptq (int{8 if rng == 127 else 6})"
    return {"w": w, "m": m}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    cfg = scfg.from_dict(RAW)
    torch.manual_seed(0)
    model = GPT(cfg.model)
    obj = _container(model)
    path = tmp_path_factory.mktemp("loop45") / "final_model.int6.ptz"
    buf = io.BytesIO()
    torch.save(obj, buf)
    # xz as COMPRESSOR=lzma writes it, at a fast preset (the reader does not care which).
    path.write_bytes(lzma.compress(compress.byte_shuffle(buf.getvalue()), preset=0))
    return path, obj


def test_record_shape_is_detected_inferred_and_loaded_exactly(artifact):
    path, obj = artifact
    art = codec.read_artifact(path)
    assert art.compression == "xz+bshf" and families.detect(art).name == "sp8192"
    model = FAMILY.infer_config(art)["model"]
    # The skip rows (5) single out the 04-05 record's loop among the defaults.
    assert (model["sp8192_loop_start"], model["sp8192_loop_end"], model["sp8192_num_loops"]) == (4, 5, 2)
    assert model["sp8192_compressor"] == "lzma" and model["num_kv_heads"] == 2
    assert obj["m"]["blocks.0.attn.c_q.weight"] == "gptq (int6)"  # 272^2 > 65,536
    assert obj["m"]["blocks.0.attn.c_k.weight"] == "passthrough (float16)"
    prep = runner.prepare(path, RAW)
    state = prep.state
    q, s = obj["w"]["blocks.0.attn.c_q.weight.q"], obj["w"]["blocks.0.attn.c_q.weight.scale"]
    assert torch.equal(state["blocks.0.attn.c_q.weight"], q.float() * s.float()[:, None])
    assert torch.equal(state["blocks.0.attn.c_k.weight"], obj["w"]["blocks.0.attn.c_k.weight"].float())
    emb = obj["w"]["tok_emb.weight.q"].float() * obj["w"]["tok_emb.weight.scale"].float()[:, None]
    assert state["tok_emb.weight"].dtype == torch.bfloat16 and torch.equal(state["tok_emb.weight"],
                                                                             emb.to(torch.bfloat16))
    assert torch.equal(state["skip_gates"], obj["w"]["skip_gates"].float())


@pytest.mark.parametrize("mode", ["standard", "sliding", "ttt"])
def test_record_shape_scores_with_fast_equal_to_plain(artifact, mode):
    path, _ = artifact
    raw = json.loads(json.dumps(RAW))
    raw["eval"]["mode"] = mode
    prep = runner.prepare(path, raw)
    data = FAMILY.load_data(prep.cfg, str(FIX / "fineweb_val_*.bin"), TOKENIZER)
    out = {}
    for impl in ("fast", "plain"):
        model = build_model(prep.cfg, prep.state, "cpu")
        out[impl] = FAMILY.evaluate(model, data, prep.cfg, device=torch.device("cpu"), impl=impl, max_tokens=2048)
    assert out["fast"].tokens_scored == out["plain"].tokens_scored == 2048
    assert out["fast"].val_bpb == pytest.approx(out["plain"].val_bpb, abs=1e-5)
    assert 0 < out["fast"].val_bpb < 20
