"""Model keys that every GPT-style family's tensors show the same way (torch-free).

The sp1024 baseline and the SP8192 lineage name their embedding and first block alike, so the
vocabulary, width, depth and head counts are read from the same tensors; each family's `infer`
adds what is its own (MLP width, loops, gates). The 11-layer lineage (gepa, march11l) also shares
how a model section is completed from the tensors and how a contradicting key is reported."""

from __future__ import annotations

import re
from typing import Any, Mapping

from gepa.errors import ConfigError

_BLOCK = re.compile(r"blocks\.(\d+)\.")


def block_count(shapes: Mapping[str, tuple[int, ...]]) -> int:
    found = {int(m.group(1)) for k in shapes if (m := _BLOCK.match(k))}
    return max(found) + 1 if found else 0


def gpt_core_from_shapes(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[Any, str]]:
    """key -> (value, tensor that shows it) for vocab_size, model_dim, num_layers, num_heads and
    num_kv_heads; empty when there is no 2-D `tok_emb.weight`."""
    out: dict[str, tuple[Any, str]] = {}
    emb = shapes.get("tok_emb.weight")
    if emb is None or len(emb) != 2:
        return out
    d = emb[1]
    out["vocab_size"] = (emb[0], "tok_emb.weight")
    out["model_dim"] = (d, "tok_emb.weight")
    out["num_layers"] = (block_count(shapes), "blocks.*")
    q_gain, c_k = shapes.get("blocks.0.attn.q_gain"), shapes.get("blocks.0.attn.c_k.weight")
    if q_gain and len(q_gain) == 1 and q_gain[0] and d % q_gain[0] == 0:
        heads = q_gain[0]
        out["num_heads"] = (heads, "blocks.0.attn.q_gain")
        if c_k and len(c_k) == 2 and c_k[0] % (d // heads) == 0:
            out["num_kv_heads"] = (c_k[0] // (d // heads), "blocks.0.attn.c_k.weight")
    return out


def ve_layer_count(shapes: Mapping[str, tuple[int, ...]]) -> int:
    return sum(1 for k in shapes if re.fullmatch(r"ve_layer_scales\.\d+", k))


def contradicted(key: str, have: Any, value: Any, tensor: str) -> ConfigError:
    """A config key the artifact's tensors contradict: the value to set and the tensor that says so."""
    return ConfigError(f"config model.{key} is {have!r} but the artifact's tensors say {value!r} "
                       f"(from {tensor}); set model.{key} to {value!r}")


def complete_model(shapes: Mapping[str, tuple[int, ...]], found: Mapping[str, Any], defaults: Any,
                   unrecorded: tuple[str, ...]) -> dict[str, Any]:
    """A complete 11-layer-lineage `model` section: `found` (the tensors' keys) over `defaults`
    for the `unrecorded` keys; value embeddings on the last layers, XSA and partial RoPE capped by
    the model's depth and head width."""
    model = {**{k: getattr(defaults, k) for k in unrecorded}, **found}
    layers = found.get("num_layers", defaults.num_layers)
    n_ve = ve_layer_count(shapes) if found.get("ve_enabled") else 0
    model["ve_layers"] = list(range(layers - n_ve, layers))
    model["xsa_layers"] = min(defaults.xsa_layers, layers)
    if "num_heads" in found:
        head_dim = found["model_dim"] // found["num_heads"]
        model["rope_dims"] = min(defaults.rope_dims, head_dim - head_dim % 2)
    return model
