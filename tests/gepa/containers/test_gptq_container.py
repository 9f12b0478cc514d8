"""The {"w", "m"} GPTQ container: dequantization formulas, LQER corrections, and hostile content."""

from __future__ import annotations

import pytest
import torch

from gepa import codec
from gepa.containers import gptq
from gepa.errors import ArtifactContentError

def _obj(seed: int = 0) -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(-31, 32, (16, 128), generator=g, dtype=torch.int8)
    s = (torch.rand(16, generator=g) * 0.01 + 1e-3).to(torch.float16)
    emb_q = torch.randint(-127, 128, (64, 128), generator=g, dtype=torch.int8)
    emb_s = (torch.rand(64, generator=g) * 0.01 + 1e-3).to(torch.float16)
    gate_q = torch.randint(-127, 128, (4, 12), generator=g, dtype=torch.int8)
    gate_s = (torch.rand(4, generator=g) * 0.01 + 1e-3).to(torch.float16)
    small = torch.randn(128, generator=g).to(torch.float16)
    w = {"blocks.0.mlp.fc.weight.q": q, "blocks.0.mlp.fc.weight.scale": s,
         "tok_emb.weight.q": emb_q, "tok_emb.weight.scale": emb_s,
         "blocks.0.attn.attn_gate_w.gq": gate_q, "blocks.0.attn.attn_gate_w.gs": gate_s,
         "blocks.0.attn_scale": small}
    m = {"blocks.0.mlp.fc.weight": "gptq (int6)", "tok_emb.weight": "gptq (int8)",
         "blocks.0.attn.attn_gate_w": "gate_int8_row", "blocks.0.attn_scale": "passthrough (float16)"}
    template = {"blocks.0.mlp.fc.weight": ((16, 128), torch.float32), "tok_emb.weight": ((64, 128), torch.bfloat16),
                "blocks.0.attn.attn_gate_w": ((4, 12), torch.float32), "blocks.0.attn_scale": ((128,), torch.float32)}
    return {"w": w, "m": m}, template


def test_formulas_match_the_spec():
    obj, template = _obj()
    out = gptq.dequantize(obj, template)
    w = obj["w"]
    assert list(out) == list(template)
    assert torch.equal(out["blocks.0.mlp.fc.weight"],
                       w["blocks.0.mlp.fc.weight.q"].float() * w["blocks.0.mlp.fc.weight.scale"].float()[:, None])
    emb = w["tok_emb.weight.q"].float() * w["tok_emb.weight.scale"].float()[:, None]
    assert out["tok_emb.weight"].dtype == torch.bfloat16 and torch.equal(out["tok_emb.weight"], emb.to(torch.bfloat16))
    gate = w["blocks.0.attn.attn_gate_w.gq"].float() * w["blocks.0.attn.attn_gate_w.gs"].float()[:, None]
    assert torch.equal(out["blocks.0.attn.attn_gate_w"], gate)
    assert out["blocks.0.attn_scale"].dtype == torch.float32
    assert torch.equal(out["blocks.0.attn_scale"], w["blocks.0.attn_scale"].float())


def test_lqer_asymmetric_correction():
    obj, template = _obj()
    g = torch.Generator().manual_seed(3)
    rank, rows, cols = 4, 16, 128
    qa = torch.randint(-2, 2, (rows, rank), generator=g, dtype=torch.int8)
    qb = torch.randint(-8, 8, (rank * cols,), generator=g, dtype=torch.int8)
    sa = torch.tensor(0.02, dtype=torch.float16)
    sb = (torch.rand(rank * cols // 64, generator=g) * 0.1 + 0.01).to(torch.float16)
    name = "blocks.0.mlp.fc.weight"
    obj["w"].update({name + ".lqA_a": qa, name + ".lqAs_a": sa, name + ".lqB_a": qb, name + ".lqBs_a": sb})
    obj["m"][name] = "gptq (int6)+lqer_asym"
    out = gptq.dequantize(obj, template)[name]
    base = obj["w"][name + ".q"].float() * obj["w"][name + ".scale"].float()[:, None]
    b = torch.stack([qb[i * 64:(i + 1) * 64].float() * sb[i].float() for i in range(sb.numel())]).reshape(rank, cols)
    assert torch.allclose(out, base + (qa.float() * sa.float()) @ b, atol=0, rtol=0)


def test_lqer_symmetric_correction():
    obj, template = _obj()
    g = torch.Generator().manual_seed(4)
    name = "blocks.0.mlp.fc.weight"
    qa = torch.randint(-7, 8, (16, 2), generator=g, dtype=torch.int8)
    qb = torch.randint(-7, 8, (2, 128), generator=g, dtype=torch.int8)
    sa, sb = torch.full((16,), 0.01, dtype=torch.float16), torch.full((2,), 0.02, dtype=torch.float16)
    obj["w"].update({name + ".lqA": qa, name + ".lqAs": sa, name + ".lqB": qb, name + ".lqBs": sb})
    obj["m"][name] = "gptq (int6)+lqer"
    out = gptq.dequantize(obj, template)[name]
    base = obj["w"][name + ".q"].float() * obj["w"][name + ".scale"].float()[:, None]
    want = base + (qa.float() * sa.float()[:, None]) @ (qb.float() * sb.float()[:, None])
    assert torch.equal(out, want)


@pytest.mark.parametrize("damage, needle", [
    (lambda o: o["m"].__setitem__("tok_emb.weight", "int3 magic"), "storage meta"),
    (lambda o: o["w"]["blocks.0.mlp.fc.weight.q"].__setitem__((0, 0), 40), "outside the allowed range [-31, 31]"),
    (lambda o: o["w"]["blocks.0.mlp.fc.weight.scale"].__setitem__(0, float("nan")), "NaN or Inf"),
    (lambda o: o["w"]["blocks.0.mlp.fc.weight.scale"].__setitem__(0, 0.0), "zero or negative"),
    (lambda o: o["w"].__setitem__("blocks.9.secret", torch.zeros(3)), "does not use: blocks.9.secret"),
    (lambda o: o["w"].pop("tok_emb.weight.scale"), "lacks the stored tensor tok_emb.weight.scale"),
    (lambda o: o["m"].pop("blocks.0.attn_scale"), "missing 1 tensor(s): blocks.0.attn_scale"),
    (lambda o: o["w"].__setitem__("tok_emb.weight.q", torch.zeros(64, 127, dtype=torch.int8)), "shape (64, 127)"),
    (lambda o: o["w"].__setitem__("tok_emb.weight.q", torch.zeros(64, 128, dtype=torch.int16)), "int16"),
    (lambda o: o["w"].__setitem__("tok_emb.weight.q", "not a tensor"), "expected a tensor"),
    (lambda o: o["w"].__setitem__("tok_emb.weight.q", torch.zeros(1, dtype=torch.int8).expand(64, 128)),
     "strided view"),
])
def test_hostile_content_gets_a_one_line_error(damage, needle):
    obj, template = _obj()
    damage(obj)
    with pytest.raises(ArtifactContentError) as ei:
        gptq.dequantize(obj, template)
    msg = str(ei.value)
    assert needle in msg and "\n" not in msg


def test_through_the_safe_reader_with_every_compressor_and_the_shuffle():
    obj, template = _obj()
    want = gptq.dequantize(obj, template)
    for compression in ("brotli", "xz", "zstd", "lzma-raw"):
        for shuffle in (False, True):
            art = codec.read_artifact(codec.serialize(obj, compression, shuffle=shuffle))
            assert art.kind == "gptq" and art.compression == compression + ("+bshf" if shuffle else "")
            got = gptq.dequantize(art.container, template)
            assert all(torch.equal(got[k], want[k]) for k in want)
