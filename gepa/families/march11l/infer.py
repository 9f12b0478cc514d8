"""What a March 11-layer artifact's tensors say: whether it is one (sniff), the model config
they determine (inspect), and the check that rejects a config contradicting them (naming the key).

The container is the `{"w", "m"}` dict of `mixed_quantize_int6` (meta `"passthrough"`,
`"passthrough_ctrl"` or `{"type": "int6" | "int8"}`) under the lineage's tensor names
(`smear.gate`, `bigram.*`, `blocks.N.mlp.fc/proj`, no skip gates). The shapes give the
vocabulary, width, depth, head counts, MLP width, the bigram table, the value-embedding table
and its layer count, and whether the head is tied. XSA depth, the value-embedding layers, RoPE,
LN scale and the MLP activation leave no trace: an inferred config takes the 03-22 record's
values for them. Torch-free: it reads shapes only.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from gepa.errors import ConfigError
from gepa.families.march11l.config import DEFAULT, ModelConfig
from gepa.families.shapes import complete_model, contradicted, gpt_core_from_shapes, ve_layer_count

NAME_RE = re.compile(
    r"^(tok_emb\.weight|lm_head\.weight|smear\.gate|skip_weights|bigram\.(embed\.weight|proj\.weight|scale)|"
    r"ve_shared\.(embed\.weight|proj\.weight|scale)|ve_layer_scales\.\d+|"
    r"blocks\.\d+\.(attn_scale|mlp_scale|resid_mix|attn\.q_gain|attn\.(c_q|c_k|c_v|proj)\.weight|mlp\.(fc|proj)\.weight))$")
MARKERS = ("tok_emb.weight", "smear.gate", "skip_weights", "blocks.0.mlp.fc.weight", "blocks.0.attn.q_gain")
NOT_IN_TENSORS = ("xsa_layers", "ve_layers", "rope_dims", "rope_base", "rope_train_seq_len", "ln_scale",
                  "logit_softcap", "qk_gain_init", "march11l_activation", "march11l_rope_table")


def _meta_ok(meta: Any) -> bool:
    if isinstance(meta, str):
        return meta in ("passthrough", "passthrough_ctrl")
    return isinstance(meta, dict) and set(meta) == {"type"} and meta["type"] in ("int6", "int8")


def claims(meta: Mapping[str, Any]) -> bool:
    """The container's meta names only this lineage's tensors, with `mixed_quantize_int6`'s tags."""
    return (all(m in meta for m in MARKERS)
            and all(isinstance(n, str) and NAME_RE.match(n) for n in meta)
            and all(_meta_ok(v) for v in meta.values()))


def foreign(meta: Mapping[str, Any]) -> str | None:
    """Why a {w, m} meta is not this lineage's (None when it is): a missing marker, a tensor name
    or a storage tag the March records never write."""
    missing = [m for m in MARKERS if m not in meta]
    if missing:
        return f"it has no {missing[0]} tensor"
    for name, value in meta.items():
        if not (isinstance(name, str) and NAME_RE.match(name)):
            return f"it holds a tensor {str(name)[:60]} that the March records do not have"
        if not _meta_ok(value):
            return f"tensor {name} is stored as {str(value)[:40]!r}, a tag mixed_quantize_int6 does not write"
    return None


def from_shapes(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[Any, str]]:
    """key -> (value, tensor that shows it) for every model key the tensors determine."""
    out = gpt_core_from_shapes(shapes)
    if not out:
        return out
    fc = shapes.get("blocks.0.mlp.fc.weight")
    if fc and len(fc) == 2:
        out["mlp_hidden"] = (fc[0], "blocks.0.mlp.fc.weight")
    big = shapes.get("bigram.embed.weight")
    out["bigram_buckets"] = (big[0] if big else 0, "bigram.embed.weight")
    if big and len(big) == 2:
        out["bigram_embed_dim"] = (big[1], "bigram.embed.weight")
    ve = shapes.get("ve_shared.embed.weight")
    out["ve_enabled"] = (ve is not None, "ve_shared.embed.weight")
    if ve and len(ve) == 2:
        out["ve_dim"] = (ve[1], "ve_shared.embed.weight")
    out["tie_embeddings"] = ("lm_head.weight" not in shapes, "lm_head.weight")
    return out


def infer_model(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """A complete `model` section: the tensors' keys, the 03-22 record's values for the rest
    (value embeddings on the last layers, XSA on the last 4 at most, partial RoPE 16 at most)."""
    found = {k: v for k, (v, _) in from_shapes(shapes).items()}
    return complete_model(shapes, found, DEFAULT.model, NOT_IN_TENSORS)


def check_raw_model(model: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]) -> None:
    """The keys a submitted `model` section gives, against the tensors, before any other rule."""
    for key, (value, tensor) in from_shapes(shapes).items():
        if key == "mlp_hidden" or key not in model or type(model[key]) is not type(value):
            continue  # mlp_hidden 0 means 3 x model_dim (checked after parsing); wrong types: the parser's
        if model[key] != value:
            raise contradicted(key, model[key], value, tensor)


def check_against(cfg: ModelConfig, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Reject a config that contradicts the tensors, naming the key and the value to use."""
    for key, (value, tensor) in from_shapes(shapes).items():
        have = cfg.hidden if key == "mlp_hidden" else getattr(cfg, key)
        if have != value:
            raise contradicted(key, have, value, tensor)
    n_ve = ve_layer_count(shapes)
    if cfg.ve_enabled and len(cfg.ve_layers) != n_ve:
        raise ConfigError(f"config model.ve_layers lists {len(cfg.ve_layers)} layer(s) but the artifact has "
                          f"{n_ve} ve_layer_scales tensor(s); list exactly {n_ve} layer indices")
    bad = [i for i in cfg.ve_layers if i >= cfg.num_layers]
    if cfg.ve_enabled and bad:
        raise ConfigError(f"config model.ve_layers names layer(s) {bad} but the model has {cfg.num_layers} layers")
    if len(set(cfg.ve_layers)) != len(cfg.ve_layers):
        raise ConfigError(f"config model.ve_layers repeats a layer: {list(cfg.ve_layers)}")
