"""Artifact codec: reference quantizer choices, round trips and the reference fixture."""

from __future__ import annotations

import json

import pytest
import torch
import zstandard

from gepa import codec
from gepa.families.gepa.quantize import quantize_state_dict
from gepa.containers import clean
from gepa.errors import ArtifactContentError
from gepa.families.gepa import config
from gepa.families.gepa.config import ModelConfig
from gepa.families.gepa.model import expected_state
from tests.support.paths import DATA

FIXTURE = DATA / "reference_small"
ARTIFACT = FIXTURE / "final_model.int6.ptz"


def run_config_shapes(L=11, d=512, kv=256, hidden=1536, vocab=1024, buckets=2048, bdim=128,
                      ve_dim=128, heads=8) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Every key of spec §2.9 in registration order, with the submitted run's shapes."""
    f32 = torch.float32
    e: dict[str, tuple[tuple[int, ...], torch.dtype]] = {
        "skip_weights": ((L // 2, d), f32), "skip_gates": ((L // 2, d), f32),
        "tok_emb.weight": ((vocab, d), torch.bfloat16), "bigram_emb.scale": ((), f32),
        "bigram_emb.embed.weight": ((buckets, bdim), f32), "bigram_emb.proj.weight": ((d, bdim), f32),
        "smear_gate.gate": ((d,), f32),
    }
    for i in range(L):
        p = f"blocks.{i}."
        e.update({p + "attn_scale": ((d,), f32), p + "mlp_scale": ((d,), f32),
                  p + "resid_mix": ((2, d), f32), p + "attn.q_gain": ((heads,), f32),
                  p + "attn.c_q.weight": ((d, d), f32), p + "attn.c_k.weight": ((kv, d), f32),
                  p + "attn.c_v.weight": ((kv, d), f32), p + "attn.proj.weight": ((d, d), f32),
                  p + "mlp.scale": ((hidden,), f32), p + "mlp.bias": ((hidden,), f32),
                  p + "mlp.up_proj.weight": ((hidden, d), f32),
                  p + "mlp.down_proj.weight": ((d, hidden), f32)})
    e.update({"ve_shared.scale": ((), f32), "ve_shared.embed.weight": ((vocab, ve_dim), f32),
              "ve_shared.proj.weight": ((kv, ve_dim), f32), "ve_layer_scales.0": ((1,), f32),
              "ve_layer_scales.1": ((1,), f32)})
    return e


def random_state(expected, seed=0, std=0.05):
    g = torch.Generator().manual_seed(seed)
    return {k: (torch.randn(shape, generator=g) * std).to(dt) for k, (shape, dt) in expected.items()}


@pytest.fixture(scope="module")
def full_size_container():
    expected = run_config_shapes()
    return expected, quantize_state_dict(random_state(expected), mixed=True, quant_embed=True)


def test_full_size_scheme_counts_match_spec(full_size_container):
    expected, obj = full_size_container
    assert len(expected) == 144
    assert sum(torch.Size(s).numel() for s, _ in expected.values()) == 27_030_108
    art = codec.Artifact("clean", "zstd", 0, 0, obj)
    totals = clean.describe(art)["totals"]
    counts = {k: v["tensors"] for k, v in totals.items()}
    assert counts == {"int6_per_row": 66, "int8_per_tensor": 3, "fp32_passthrough": 53,
                      "fp16_passthrough": 22}
    # The log's payload (tensor bytes of the container) for MIXED_QUANT=1 QUANT_EMBED=1.
    assert sum(v["stored_bytes"] for v in totals.values()) == 27_522_422
    assert obj["__quant_format__"] == "mixed_clean_per_row_v1"
    int8 = {k for k, m in obj["qmeta"].items() if m["scheme"] == "per_tensor"}
    assert int8 == {"tok_emb.weight", "bigram_emb.embed.weight", "ve_shared.embed.weight"}
    assert obj["passthrough"]["blocks.0.mlp.scale"].dtype == torch.float16
    assert obj["passthrough"]["bigram_emb.proj.weight"].dtype == torch.float32
    assert obj["dtypes"]["tok_emb.weight"] == "bfloat16"
    clean.validate_container(obj, expected)


def test_default_flags_keep_embedding_as_fp16():
    expected = run_config_shapes(L=1)
    obj = quantize_state_dict(random_state(expected), mixed=False, quant_embed=False)
    assert obj["__quant_format__"] == "int6_clean_per_row_v1"
    assert obj["passthrough"]["tok_emb.weight"].dtype == torch.float16
    assert obj["passthrough_orig_dtypes"]["tok_emb.weight"] == "bfloat16"
    assert obj["qmeta"]["bigram_emb.embed.weight"] == {"scheme": "per_row", "axis": 0}
    sd = clean.dequantize(obj)
    assert sd["tok_emb.weight"].dtype == torch.bfloat16


def test_write_read_round_trip_is_bit_exact(tmp_path):
    expected = run_config_shapes(L=2, d=256, kv=128, hidden=768, vocab=1024, buckets=1024, bdim=64,
                                 ve_dim=64)
    obj = quantize_state_dict(random_state(expected, seed=5))
    for compression in ("zstd", "zlib"):
        path = tmp_path / f"a.{compression}"
        n = codec.write_artifact(path, obj, compression)
        assert n == path.stat().st_size
        art = codec.read_artifact(path)
        assert (art.compression, art.format, art.compressed_bytes) == (compression, obj["__quant_format__"], n)
        for sec in ("quantized", "scales", "passthrough"):
            assert list(art.container[sec]) == list(obj[sec])
            for k, t in obj[sec].items():
                assert art.container[sec][k].dtype == t.dtype
                assert torch.equal(art.container[sec][k], t)
        assert art.container["dtypes"] == obj["dtypes"]
        assert art.container["qmeta"] == obj["qmeta"]
    sd = clean.load_state_dict(codec.read_artifact(tmp_path / "a.zstd"), expected)
    assert list(sd) == list(expected)
    assert all(sd[k].dtype == dt and tuple(sd[k].shape) == s for k, (s, dt) in expected.items())
    assert not list(tmp_path.glob(".*tmp"))


def test_zstd_frame_is_single_with_content_size():
    obj = quantize_state_dict(random_state(run_config_shapes(L=1, d=128, kv=64, hidden=256)))
    blob = codec.serialize(obj)
    params = zstandard.get_frame_parameters(blob)
    raw = zstandard.ZstdDecompressor().decompress(blob)
    assert params.content_size == len(raw)


def test_int6_per_row_error_is_at_most_half_a_step():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(96, 1024, generator=g) * torch.linspace(0.01, 3.0, 96)[:, None]
    obj = quantize_state_dict({"blocks.0.mlp.up_proj.weight": w})
    q = obj["quantized"]["blocks.0.mlp.up_proj.weight"]
    s16 = obj["scales"]["blocks.0.mlp.up_proj.weight"].float()
    assert int(q.min()) >= -32 and int(q.max()) <= 31
    assert bool((s16 >= torch.tensor(1 / 31).half().float()).all())  # the 1/31 floor
    deq = clean.dequantize(obj)["blocks.0.mlp.up_proj.weight"]
    inside = w.abs() <= 31 * s16[:, None]  # values past the chosen clip are clipped on purpose
    err = (deq - w).abs()
    # q used the fp32 scale; the stored fp16 scale adds at most |q|·|Δscale| ≤ 32·2^-11·scale.
    bound = s16[:, None] * (0.5 + 32 * 2.0**-11) + 1e-6
    assert bool((err[inside] <= bound.expand_as(w)[inside]).all())


def test_int6_clip_choice_is_per_tensor_and_mse_optimal():
    g = torch.Generator().manual_seed(2)
    w = torch.randn(64, 4096, generator=g) * 4
    w[0, 0] = 400.0  # an outlier makes clipping worthwhile
    obj = quantize_state_dict({"blocks.0.attn.c_q.weight": w})
    s = obj["scales"]["blocks.0.attn.c_q.weight"].float()
    deq = clean.dequantize(obj)["blocks.0.attn.c_q.weight"]
    full = torch.clamp_min(w.abs().amax(1) / 31, 1 / 31)
    q_full = torch.clamp(torch.round(w / full[:, None]), -32, 31)
    mse_full = ((q_full * full[:, None] - w) ** 2).mean()
    assert ((deq - w) ** 2).mean() <= mse_full * 1.001
    assert s[0] < full[0]  # the outlier row was clipped, not scaled to 400


def test_int8_per_tensor_error_is_at_most_half_a_step():
    g = torch.Generator().manual_seed(3)
    w = (torch.randn(1024, 128, generator=g) * 0.3).to(torch.bfloat16)
    obj = quantize_state_dict({"tok_emb.weight": w})
    s = obj["scales"]["tok_emb.weight"]
    assert s.dtype == torch.float16 and s.ndim == 0
    assert obj["qmeta"]["tok_emb.weight"] == {"scheme": "per_tensor", "quant_type": "int8"}
    q = obj["quantized"]["tok_emb.weight"]
    assert int(q.abs().max()) <= 127
    deq32 = q.float() * float(s)
    assert float((deq32 - w.float()).abs().max()) <= float(s) * 0.5 * (1 + 1e-5)
    assert clean.dequantize(obj)["tok_emb.weight"].dtype == torch.bfloat16


def test_non_2d_large_tensor_takes_fallback():
    w = torch.randn(4, 128, 256)
    obj = quantize_state_dict({"blocks.0.mlp.odd.weight": w}, mixed=False)
    s = obj["scales"]["blocks.0.mlp.odd.weight"]
    assert s.dtype == torch.float32 and s.ndim == 0
    assert "qmeta" not in obj
    err = (clean.dequantize(obj)["blocks.0.mlp.odd.weight"] - w).abs()
    inside = w.abs() <= 31 * float(s)  # the fallback clips at the 99.99984th percentile
    assert int(inside.sum()) >= w.numel() - 1
    assert float(err[inside].max()) <= float(s) * 0.5 * (1 + 1e-5)


def test_int8_storage_format():
    w = torch.randn(256, 512) * 5
    obj = quantize_state_dict({"blocks.0.attn.c_q.weight": w}, mixed=False, int8_storage=True)
    assert obj["__quant_format__"] == "int8_clean_per_row_v1"
    assert int(obj["quantized"]["blocks.0.attn.c_q.weight"].abs().max()) > 31
    clean.validate_container(obj)


def test_reference_fixture_reads_and_matches_expected():
    exp = json.loads((FIXTURE / "expected.json").read_text())
    art = codec.read_artifact(ARTIFACT)
    assert art.format == exp["quant_format"] == "mixed_clean_per_row_v1"
    assert art.compression == "zstd"
    assert art.compressed_bytes == exp["artifact_bytes"]
    assert len(art.container["quantized"]) == exp["n_quantized"] == 7
    assert len(art.container["passthrough"]) == exp["n_passthrough"] == 40
    clean.validate_container(art.container)
    sd = clean.dequantize(art.container)
    assert len(sd) == 47
    assert sd["tok_emb.weight"].dtype == torch.bfloat16
    assert sd["blocks.0.mlp.scale"].dtype == torch.float32
    info = clean.describe(art)
    assert {r["name"]: r["scheme"] for r in info["tensors"]}["blocks.0.attn.c_q.weight"] == "fp16_passthrough"
    assert info["totals"]["int6_per_row"]["tensors"] == 6
    assert info["totals"]["int8_per_tensor"]["tensors"] == 1
    json.dumps(info)


def test_reference_fixture_reserializes_to_same_tensors():
    art = codec.read_artifact(ARTIFACT)
    blob = codec.serialize(art.container)
    again = codec.read_artifact(blob)
    a, b = clean.dequantize(art.container), clean.dequantize(again.container)
    assert list(a) == list(b)
    assert all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)
    assert again.decompressed_bytes == art.decompressed_bytes


def test_requantizing_the_fixture_is_a_fixed_point():
    art = codec.read_artifact(ARTIFACT)
    obj = art.container
    again = quantize_state_dict(clean.dequantize(obj), mixed=True, quant_embed=True)
    assert again["__quant_format__"] == obj["__quant_format__"]
    assert again["qmeta"] == obj["qmeta"]
    assert again["passthrough_orig_dtypes"] == obj["passthrough_orig_dtypes"]
    for k, q in obj["quantized"].items():
        assert torch.equal(again["quantized"][k], q), k
        assert torch.equal(again["scales"][k], obj["scales"][k]), k
    for k, t in obj["passthrough"].items():
        assert again["passthrough"][k].dtype == t.dtype and torch.equal(again["passthrough"][k], t), k


def test_expected_shapes_are_enforced_with_a_readable_message():
    obj = codec.read_artifact(ARTIFACT).container
    sd = clean.dequantize(obj)
    expected = {k: (tuple(v.shape), v.dtype) for k, v in sd.items()}
    clean.validate_container(obj, expected)
    expected["blocks.0.attn.c_k.weight"] = ((256, 256), torch.float32, "num_kv_heads=4")
    with pytest.raises(ArtifactContentError) as ei:
        clean.validate_container(obj, expected)
    assert str(ei.value) == ("tensor blocks.0.attn.c_k.weight has shape (128, 256) but the "
                             "config's num_kv_heads=4 needs (256, 256)")
    del expected["blocks.0.attn.c_k.weight"]
    expected["blocks.3.attn.c_q.weight"] = ((256, 256), torch.float32)
    with pytest.raises(ArtifactContentError, match=r"missing 1 tensor\(s\): blocks.3.attn.c_q.weight; "
                       r"unexpected 1 tensor\(s\): blocks.0.attn.c_k.weight"):
        clean.validate_container(obj, expected)


def test_load_state_dict_orders_like_expected():
    sd = clean.load_state_dict(codec.read_artifact(ARTIFACT))
    expected = {k: (tuple(v.shape), v.dtype) for k, v in reversed(list(sd.items()))}
    assert list(clean.load_state_dict(codec.read_artifact(ARTIFACT), expected)) == list(expected)
    art = codec.read_artifact(ARTIFACT.read_bytes())
    assert list(clean.load_state_dict(art, expected)) == list(expected)


def test_model_expected_state_matches_fixture():
    cfg = config.load(FIXTURE / "eval_standard.json")
    clean.load_state_dict(codec.read_artifact(ARTIFACT), expected_state(cfg.model))


def test_model_expected_state_matches_spec_table():
    got = expected_state(ModelConfig())
    want = run_config_shapes()
    assert list(got) == list(want)
    assert {k: (tuple(s), d) for k, (s, d) in got.items()} == want
