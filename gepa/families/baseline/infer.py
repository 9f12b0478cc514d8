"""What a baseline artifact's tensor names and shapes say: whether it is this family, its model
config, and whether a given config contradicts it (spec §3).

The shapes determine vocabulary, width, depth, head counts (from `q_gain` and `c_k`), MLP width
and whether the head is tied; RoPE base, soft-cap and the rotary table state leave no trace in
the weights, so an inferred config takes the records' values for them. Torch-free.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from gepa.errors import ConfigError
from gepa.families.baseline.config import ModelConfig
from gepa.families.shapes import gpt_core_from_shapes

BLOCK_PARTS = ("attn_scale", "mlp_scale", "resid_mix", "attn.q_gain", "attn.c_q.weight", "attn.c_k.weight",
               "attn.c_v.weight", "attn.proj.weight", "mlp.fc.weight", "mlp.proj.weight")
_NAME = re.compile(r"skip_weights|tok_emb\.weight|lm_head\.weight|blocks\.(\d+)\.(" +
                   "|".join(re.escape(p) for p in BLOCK_PARTS) + ")")
MARKERS = ("tok_emb.weight", "blocks.0.attn.c_q.weight", "blocks.0.mlp.fc.weight", "blocks.0.attn.q_gain")
NOT_IN_TENSORS = ("rope_base", "logit_softcap", "baseline_rope_tables")


def is_baseline_names(names: list[str]) -> bool:
    """Every tensor is one the baseline GPT has, and its characteristic ones are present.

    Lineages that reuse the container with another model (SmearGate, BigramHash, the GEPA
    U-Net, H-Net, ...) carry tensors outside this set and are not claimed."""
    return bool(names) and all(_NAME.fullmatch(n) for n in names) and all(m in names for m in MARKERS)


def model_from_shapes(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[Any, str]]:
    """key -> (value, tensor that shows it) for every model key the tensors determine."""
    out = gpt_core_from_shapes(shapes)
    if not out:
        return out
    fc = shapes.get("blocks.0.mlp.fc.weight")
    if fc and len(fc) == 2:
        out["mlp_hidden"] = (fc[0], "blocks.0.mlp.fc.weight")
    out["tie_embeddings"] = ("lm_head.weight" not in shapes, "lm_head.weight")
    return out


def infer_model(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """A complete `model` section: the tensors' values, the records' for what they cannot show."""
    base = ModelConfig()
    model = {k: getattr(base, k) for k in NOT_IN_TENSORS}
    model.update({k: getattr(base, k) for k in ("vocab_size", "num_layers", "model_dim", "num_heads",
                                                 "num_kv_heads", "mlp_hidden", "tie_embeddings")})
    model.update({k: v for k, (v, _) in model_from_shapes(shapes).items()})
    return model


def check_against(cfg: ModelConfig, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Reject a config that contradicts the tensors, naming the key and the value to use."""
    for key, (value, tensor) in model_from_shapes(shapes).items():
        have = getattr(cfg, key)
        if have != value:
            raise ConfigError(f"config model.{key} is {have!r} but the artifact's tensors say {value!r} "
                              f"(from {tensor}); set model.{key} to {value!r}")


def expected_state(m: ModelConfig) -> dict[str, tuple[tuple[int, ...], str, str]]:
    """Every state-dict key in `GPT.state_dict()` order with its shape, the reference dtype and the
    config keys that decide the shape (quoted in shape errors)."""
    d, kv, hid = m.model_dim, m.kv_dim, m.mlp_hidden
    out: dict[str, tuple[tuple[int, ...], str, str]] = {
        "skip_weights": ((m.num_layers // 2, d), "float32", "num_layers/model_dim"),
        "tok_emb.weight": ((m.vocab_size, d), "bfloat16", "vocab_size/model_dim"),
    }
    for i in range(m.num_layers):
        p = f"blocks.{i}."
        out[p + "attn_scale"] = ((d,), "float32", "model_dim")
        out[p + "mlp_scale"] = ((d,), "float32", "model_dim")
        out[p + "resid_mix"] = ((2, d), "float32", "model_dim")
        out[p + "attn.q_gain"] = ((m.num_heads,), "float32", "num_heads")
        out[p + "attn.c_q.weight"] = ((d, d), "float32", "model_dim")
        out[p + "attn.c_k.weight"] = ((kv, d), "float32", "num_kv_heads/num_heads/model_dim")
        out[p + "attn.c_v.weight"] = ((kv, d), "float32", "num_kv_heads/num_heads/model_dim")
        out[p + "attn.proj.weight"] = ((d, d), "float32", "model_dim")
        out[p + "mlp.fc.weight"] = ((hid, d), "float32", "mlp_hidden/model_dim")
        out[p + "mlp.proj.weight"] = ((d, hid), "float32", "mlp_hidden/model_dim")
    if not m.tie_embeddings:
        out["lm_head.weight"] = ((m.vocab_size, d), "float32", "tie_embeddings/vocab_size/model_dim")
    return out
