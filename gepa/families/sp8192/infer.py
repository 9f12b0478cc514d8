"""What an sp8192 artifact's tensors say: whether it is one (sniff), the model config they
determine (inspect), and the check that rejects a config contradicting them (naming the key).

The shapes give the vocabulary, width, depth, head counts, MLP multiple, the number of skip rows
(which constrains the loop) and whether skip gates exist; the compressor is known from decoding.
The loop segment, XSA depth, parallel-residual start and RoPE settings leave no trace, so an
inferred config takes the 04-09 record's values where they fit the depth.
Torch-free: it reads shapes only.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from gepa.errors import ConfigError
from gepa.families.sp8192.config import DEFAULT, ModelConfig
from gepa.families.shapes import gpt_core_from_shapes

# Every model tensor name of the family (spec §3); a container with any other name is not sp8192.
NAME_RE = re.compile(r"^(skip_weights|skip_gates|tok_emb\.weight|blocks\.\d+\.(attn_scale|mlp_scale|resid_mix|"
                     r"attn\.q_gain|attn\.(c_q|c_k|c_v|proj)\.weight|mlp\.(fc|proj)\.weight))$")
MARKERS = ("tok_emb.weight", "skip_weights", "blocks.0.attn.q_gain", "blocks.0.mlp.fc.weight", "blocks.0.resid_mix")
META_VALUES = ("passthrough (float16)", "gptq (int6)", "gptq (int8)")
# What the decoded `Artifact.compression` says, for each `model.sp8192_compressor`.
CODEC_OF = {"brotli": "brotli", "lzma": "xz"}
NOT_IN_TENSORS = ("rope_dims", "rope_base", "ln_scale", "logit_softcap", "qk_gain_init", "sp8192_xsa_last_n",
                  "sp8192_parallel_residual_start", "sp8192_rotary_train_seq_len", "sp8192_rope_table")


def claims(meta: Mapping[str, Any]) -> bool:
    """The container's meta names exactly the family's tensors, with the family's storage tags."""
    names = list(meta)
    return (all(m in meta for m in MARKERS)
            and all(isinstance(n, str) and NAME_RE.match(n) for n in names)
            and all(isinstance(v, str) and v in META_VALUES for v in meta.values()))


def from_shapes(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[Any, str]]:
    """key -> (value, tensor that shows it) for the model keys the tensors determine."""
    out = gpt_core_from_shapes(shapes)
    if not out:
        return out
    d = out["model_dim"][0]
    fc = shapes.get("blocks.0.mlp.fc.weight")
    if fc and len(fc) == 2 and d:
        out["sp8192_mlp_mult"] = (fc[0] / d, "blocks.0.mlp.fc.weight")
    out["sp8192_skip_gates"] = ("skip_gates" in shapes, "skip_gates")
    return out


def skip_rows(shapes: Mapping[str, tuple[int, ...]]) -> int | None:
    sw = shapes.get("skip_weights")
    return sw[0] if sw and len(sw) == 2 else None


def _loop_with(layers: int, rows: int | None) -> dict[str, int]:
    """A loop segment whose looped order has `rows` skip rows: the record's 3-5 x2 or 4-5 x2 when
    they fit, else the first that does (the tensors cannot tell segments of equal length apart)."""
    candidates = [(3, 5, 2), (4, 5, 2)]
    candidates += [(s, e, n) for n in (2, 1, 3, 4) for s in range(layers) for e in range(s, layers)]
    candidates.append((0, 0, 0))
    for s, e, n in candidates:
        if e >= layers:
            continue
        m = ModelConfig(num_layers=layers, sp8192_num_loops=n, sp8192_loop_start=s, sp8192_loop_end=e)
        if rows is None or m.num_skips == rows:
            return {"sp8192_loop_start": s, "sp8192_loop_end": e, "sp8192_num_loops": n}
    return {}


def infer_model(shapes: Mapping[str, tuple[int, ...]], compression: str) -> dict[str, Any]:
    """A complete `model` section: tensor-determined keys, a loop that fits the skip rows, and the
    record's values (fitted to the depth) for the rest."""
    model = DEFAULT.to_dict()["model"]
    model.update({k: v for k, (v, _) in from_shapes(shapes).items()})
    layers = model["num_layers"]
    model.update(_loop_with(layers, skip_rows(shapes)))
    model["sp8192_xsa_last_n"] = layers
    if model["sp8192_parallel_residual_start"] >= layers:
        model["sp8192_parallel_residual_start"] = -1
    head_dim = model["model_dim"] // max(1, model["num_heads"])
    model["rope_dims"] = min(model["rope_dims"], head_dim - head_dim % 2)
    model["sp8192_compressor"] = "lzma" if compression.startswith("xz") else "brotli"
    return model


def check_against(cfg: ModelConfig, shapes: Mapping[str, tuple[int, ...]], compression: str) -> None:
    """Reject a config that contradicts the artifact, naming the key and the value to use."""
    for key, (value, tensor) in from_shapes(shapes).items():
        have = getattr(cfg, key)
        if key == "sp8192_mlp_mult":
            if cfg.hidden != shapes[tensor][0]:
                raise ConfigError(f"config model.sp8192_mlp_mult is {have!r}, so the MLP has {cfg.hidden} hidden "
                                  f"units, but {tensor} has {shapes[tensor][0]}; set model.sp8192_mlp_mult to "
                                  f"{value!r}")
            continue
        if have != value:
            raise ConfigError(f"config model.{key} is {have!r} but the artifact's tensors say {value!r} "
                              f"(from {tensor}); set model.{key} to {value!r}")
    rows = skip_rows(shapes)
    if rows is not None and rows != cfg.num_skips:
        enc, dec = cfg.split()
        raise ConfigError(f"config model.sp8192_num_loops/sp8192_loop_start/sp8192_loop_end give the looped order "
                          f"{enc + dec} with {cfg.num_skips} skip rows, but skip_weights has {rows}; set the loop "
                          "keys to the run's NUM_LOOPS, LOOP_START and LOOP_END")
    base = compression.split("+")[0]
    if base not in CODEC_OF.values():
        raise ConfigError(f"the artifact is compressed with {base}, but the sp8192 reference reads only brotli "
                          "or lzma (xz) artifacts; model.sp8192_compressor cannot describe it")
    if CODEC_OF[cfg.sp8192_compressor] != base:
        want = "lzma" if base == "xz" else "brotli"
        raise ConfigError(f"config model.sp8192_compressor is {cfg.sp8192_compressor!r} but the artifact is a "
                          f"{base} stream; set model.sp8192_compressor to {want!r}")
