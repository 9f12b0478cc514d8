"""A tiny random CaseOps model (every variant feature on) and a synthetic document stream, for
property tests that must run in seconds."""

from __future__ import annotations

import copy

import torch

from gepa.families.caseops import config as ccfg
from gepa.families.caseops.model import CaseOpsGPT

BOS = 1
VOCAB = 64

TINY = {
    "family": "caseops",
    "model": {"vocab_size": VOCAB, "num_layers": 3, "model_dim": 32, "num_heads": 4, "num_kv_heads": 2,
              "mlp_hidden": 64, "rope_dims": 4, "xsa_layers": 3, "caseops_num_loops": 1, "caseops_loop_start": 1,
              "caseops_loop_end": 1, "caseops_parallel_start_layer": 2, "caseops_attn_gate": "sparse",
              "caseops_gate_window": 8, "caseops_smear_gate": "bos_fix"},
    "eval": {"mode": "caseops_phased_ttt", "seq_len": 16, "caseops_val_batch_tokens": 256, "caseops_world_size": 1,
             "caseops_sidecar": None},
    "caseops_ttt": {"optimizer": "adam", "lora_lr": 0.01, "lora_rank": 4, "chunk_size": 8, "eval_seq_len": 24,
                    "batch_docs": 3, "prefix_docs": 5, "num_phases": 2, "global_lr": 0.01,
                    "global_chunk_tokens": 64, "global_batch_seqs": 2, "lora_alpha": 8.0, "warm_start_a": True},
}


def config(mode: str = "caseops_phased_ttt", **ttt) -> ccfg.EvalConfig:
    raw = copy.deepcopy(TINY)
    raw["eval"]["mode"] = mode
    raw["caseops_ttt"].update(ttt)
    return ccfg.from_dict(raw)


def state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights with every gate and lambda away from its identity value."""
    torch.manual_seed(seed)
    model = CaseOpsGPT(config().model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def build(sd: dict[str, torch.Tensor], cfg: ccfg.EvalConfig) -> CaseOpsGPT:
    model = CaseOpsGPT(cfg.model)
    model.load_state_dict(sd, strict=True)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def stream(seed: int = 1, docs: int = 13) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    parts = []
    for _ in range(docs):
        n = int(torch.randint(6, 70, (1,), generator=g))
        parts.append(torch.cat([torch.tensor([BOS]), torch.randint(2, VOCAB, (n,), generator=g)]))
    toks = torch.cat(parts)
    keep = ((toks.numel() - 1) // 16) * 16 + 1
    return toks[:keep]
