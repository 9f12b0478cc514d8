"""Recover the model section of an evaluation config from a state dict's shapes.

Shapes determine most fields; XSA depth, RoPE settings and the softcap leave no trace in the
weights and are reported as unknown."""

from __future__ import annotations

import re

import torch


def infer_model_config(state: dict[str, torch.Tensor]) -> dict:
    out: dict = {}
    emb = state.get("tok_emb.weight")
    if emb is not None:
        out["vocab_size"], out["model_dim"] = int(emb.shape[0]), int(emb.shape[1])
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))}
    out["num_layers"] = len(blocks)
    q_gain = state.get("blocks.0.attn.q_gain")
    c_k = state.get("blocks.0.attn.c_k.weight")
    if q_gain is not None and "model_dim" in out:
        heads = int(q_gain.shape[0])
        out["num_heads"] = heads
        if c_k is not None and heads:
            out["num_kv_heads"] = int(c_k.shape[0]) // (out["model_dim"] // heads)
    up = state.get("blocks.0.mlp.up_proj.weight")
    if up is not None:
        out["mlp_hidden"] = int(up.shape[0])
    big = state.get("bigram_emb.embed.weight")
    out["bigram_buckets"] = int(big.shape[0]) if big is not None else 0
    if big is not None:
        out["bigram_embed_dim"] = int(big.shape[1])
    ve = state.get("ve_shared.embed.weight")
    out["ve_enabled"] = ve is not None
    if ve is not None:
        out["ve_dim"] = int(ve.shape[1])
        out["ve_layer_count"] = sum(1 for k in state if k.startswith("ve_layer_scales."))
    out["tie_embeddings"] = "lm_head.weight" not in state
    out["not_recoverable"] = ["xsa_layers", "ve_layers", "rope_dims", "rope_base", "rope_train_seq_len",
                              "ln_scale", "logit_softcap"]
    return out
