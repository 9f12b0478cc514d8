"""The 2026-04-27 variant end to end from a container: sparse gate, BOS-fixed SmearGate and an
asymmetric LQER correction, detected, inferred (with that record's TTT settings) and scored."""

from __future__ import annotations

import copy

import torch

from tests.support.caseops_tiny import TINY, state, stream
from gepa import codec, families, runner
from gepa.families.caseops.config import from_dict
from gepa import shards


def _container() -> tuple[dict, dict[str, torch.Tensor]]:
    sd = state()
    g = torch.Generator().manual_seed(3)
    w, m, want = {}, {}, {}
    for name, t in sd.items():
        if name == "blocks.0.mlp.fc.weight":   # GPTQ int6 + rank-4 asymmetric LQER
            q = torch.randint(-31, 32, t.shape, generator=g, dtype=torch.int8)
            s = (torch.rand(t.shape[0], generator=g) * 0.01 + 0.001).half()
            qa = torch.randint(-2, 2, (t.shape[0], 4), generator=g, dtype=torch.int8)
            qb = torch.randint(-8, 8, (4, t.shape[1]), generator=g, dtype=torch.int8)
            sa, sb = torch.tensor(0.01).half(), (torch.rand(4 * t.shape[1] // 64, generator=g) * 0.01).half()
            w.update({name + ".q": q, name + ".scale": s, name + ".lqA_a": qa, name + ".lqAs_a": sa,
                      name + ".lqB_a": qb, name + ".lqBs_a": sb})
            m[name] = "gptq (int6)+lqer_asym"
            b = (qb.reshape(-1, 64).float() * sb.float()[:, None]).reshape(4, -1)
            want[name] = q.float() * s.float()[:, None] + (qa.float() * sa.float()) @ b
        else:
            w[name] = t.half()
            m[name] = "passthrough (float16)"
            want[name] = t.half().float()
    return {"w": w, "m": m}, want


def test_variant_is_detected_inferred_and_scored(tmp_path):
    obj, want = _container()
    path = tmp_path / "final_model.int6.ptz"
    codec.write_artifact(path, obj, "brotli", shuffle=True)
    art = codec.read_artifact(path)
    fam = families.detect(art)
    assert fam.name == "caseops"
    inferred = fam.infer_config(art)
    model = inferred["model"]
    assert (model["caseops_attn_gate"], model["caseops_gate_window"], model["caseops_smear_gate"]) == ("sparse", 8, "bos_fix")
    assert inferred["caseops_ttt"]["lora_alpha"] == 144.0 and inferred["caseops_ttt"]["warm_start_a"] is True
    cfg = copy.deepcopy(TINY)
    state_ = fam.load_state(art, from_dict(cfg))
    assert torch.allclose(state_["blocks.0.mlp.fc.weight"], want["blocks.0.mlp.fc.weight"], atol=0, rtol=0)
    toks = stream()
    shards.write_shard(tmp_path / "fineweb_val_000000.bin", toks.numpy().astype("uint16"))
    res = runner.run_evaluation(path, cfg, val_glob=str(tmp_path / "fineweb_val_0*.bin"))
    assert res.family == "caseops" and res.tokens_scored == toks.numel() - 1
    rep = res.extra["caseops_bytes"]
    assert rep["documents_piece_lower_bound"] == rep["documents"]  # synthetic text golfcheck does not hold
    assert res.val_bpb > 0
