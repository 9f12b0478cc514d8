"""What a GEPA artifact's tensors say about the model config, and the check against a config.

The shapes determine the vocabulary, width, depth, head counts, MLP width, the bigram table, the
value-embedding table and how many layers use it, and whether the head is tied. XSA depth, which
layers take value embeddings, the RoPE settings and the softcap leave no trace in the weights: an
inferred config takes the seed run's values for them, and `inspect` says so.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from gepa.errors import ConfigError
from gepa.families.gepa.config import ModelConfig
from gepa.families.shapes import complete_model, contradicted, ve_layer_count

NOT_IN_TENSORS = ("xsa_layers", "ve_layers", "rope_dims", "rope_base", "rope_train_seq_len", "ln_scale",
                  "logit_softcap", "qk_gain_init")


def _blocks(shapes: Mapping[str, tuple[int, ...]]) -> int:
    found = {int(m.group(1)) for k in shapes if (m := re.match(r"blocks\.(\d+)\.", k))}
    return max(found) + 1 if found else 0


def model_from_shapes(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[Any, str]]:
    """key -> (value, tensor that shows it) for every model key the tensors determine."""
    out: dict[str, tuple[Any, str]] = {}
    emb = shapes.get("tok_emb.weight")
    if emb is None or len(emb) != 2:
        return out
    out["vocab_size"] = (emb[0], "tok_emb.weight")
    out["model_dim"] = (emb[1], "tok_emb.weight")
    out["num_layers"] = (_blocks(shapes), "blocks.*")
    q_gain, c_k = shapes.get("blocks.0.attn.q_gain"), shapes.get("blocks.0.attn.c_k.weight")
    if q_gain and q_gain[0] and emb[1] % q_gain[0] == 0:
        heads = q_gain[0]
        out["num_heads"] = (heads, "blocks.0.attn.q_gain")
        if c_k:
            out["num_kv_heads"] = (c_k[0] // (emb[1] // heads), "blocks.0.attn.c_k.weight")
    up = shapes.get("blocks.0.mlp.up_proj.weight")
    if up:
        out["mlp_hidden"] = (up[0], "blocks.0.mlp.up_proj.weight")
    big = shapes.get("bigram_emb.embed.weight")
    out["bigram_buckets"] = (big[0] if big else 0, "bigram_emb.embed.weight")
    if big:
        out["bigram_embed_dim"] = (big[1], "bigram_emb.embed.weight")
    ve = shapes.get("ve_shared.embed.weight")
    out["ve_enabled"] = (ve is not None, "ve_shared.embed.weight")
    if ve:
        out["ve_dim"] = (ve[1], "ve_shared.embed.weight")
    out["tie_embeddings"] = ("lm_head.weight" not in shapes, "lm_head.weight")
    return out


def infer_model(shapes: Mapping[str, tuple[int, ...]]) -> tuple[dict[str, Any], list[str]]:
    """(a complete `model` section, the keys taken from the seed defaults because no tensor shows
    them). Value-embedding layers default to the last ones, as in the seed run."""
    found = {k: v for k, (v, _) in model_from_shapes(shapes).items()}
    return complete_model(shapes, found, ModelConfig(), NOT_IN_TENSORS), [k for k in NOT_IN_TENSORS]


def check_raw_model(model: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]) -> None:
    """The keys a submitted `model` section gives, against the tensors, before any other check:
    `num_heads: 8` on a 2-head artifact is reported as num_heads, not as the RoPE rule it trips."""
    for key, (value, tensor) in model_from_shapes(shapes).items():
        if key == "mlp_hidden" or key not in model:  # mlp_hidden 0 means 3 x model_dim: checked after parsing
            continue
        if type(model[key]) is not type(value):  # a wrong type is the parser's to report, in its words
            continue
        if model[key] != value:
            raise contradicted(key, model[key], value, tensor)


def check_against(cfg: ModelConfig, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Reject a config that contradicts the tensors, naming the key and the value to use."""
    for key, (value, tensor) in model_from_shapes(shapes).items():
        have = getattr(cfg, key)
        if key == "mlp_hidden":
            have = cfg.hidden
        if have != value:
            raise contradicted(key, have, value, tensor)
    n_ve = ve_layer_count(shapes)
    if cfg.ve_enabled and len(cfg.ve_layers) != n_ve:
        raise ConfigError(f"config model.ve_layers lists {len(cfg.ve_layers)} layer(s) but the artifact has "
                          f"{n_ve} ve_layer_scales tensor(s); list exactly {n_ve} layer indices "
                          f"(the seed run uses the last ones: {list(range(cfg.num_layers - n_ve, cfg.num_layers))})")
    bad = [i for i in cfg.ve_layers if i >= cfg.num_layers]
    if cfg.ve_enabled and bad:
        raise ConfigError(f"config model.ve_layers names layer(s) {bad} but the model has {cfg.num_layers} "
                          f"layers (0..{cfg.num_layers - 1})")
    if len(set(cfg.ve_layers)) != len(cfg.ve_layers):
        raise ConfigError(f"config model.ve_layers repeats a layer: {list(cfg.ve_layers)}")
