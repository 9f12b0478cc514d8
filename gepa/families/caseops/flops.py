"""FLOP model of a CaseOps evaluation (queue ETAs), torch-free.

Per token and slot of the looped schedule: q/k/v/o and MLP matmuls plus causal attention over half
the context on average; the head once per position (standard) or per scored/trained column (TTT
fast path). Phased TTT runs every document chunk by chunk with a window of up to
`eval_seq_len` tokens, so each chunk re-runs the trunk over its whole window; training reuses the
scoring forward (backward = 2 forwards). Global SGD phases cost 3 forwards over the prefix
documents' tokens. Document lengths are unknown before the data is read, so TTT assumes documents
of `eval_seq_len` tokens (the cost is quadratic in the window, linear in the stream).
"""

from __future__ import annotations

from gepa.families.caseops.config import EvalConfig, ModelConfig


def trunk_per_token(m: ModelConfig, ctx: int) -> float:
    d, kv, hid = m.model_dim, m.kv_dim, m.mlp_hidden
    enc, dec = m.slots
    per_slot = 2 * (2 * d * d + 2 * d * kv + 2 * d * hid) + 2 * ctx * d
    return (len(enc) + len(dec)) * per_slot


def head_per_token(m: ModelConfig) -> float:
    return 2 * m.model_dim * m.vocab_size


def eval_flops(cfg: EvalConfig, total_tokens: int) -> float:
    m, e, t = cfg.model, cfg.eval, cfg.caseops_ttt
    n = ((total_tokens - 1) // e.seq_len) * e.seq_len if total_tokens > 1 else 0
    if e.mode == "standard":
        return n * (trunk_per_token(m, e.seq_len) + head_per_token(m))
    w, c = t.eval_seq_len, t.chunk_size
    # Chunk ci of a w-token document runs min((ci+1)c, w) positions: about w/2 per chunk on average.
    chunks = n / c
    positions = chunks * min(w, max(c, w // 2))
    score = positions * trunk_per_token(m, w // 2) + n * head_per_token(m) * (1 + t.lora_rank / m.model_dim)
    train = 2.0 * score
    prefix_tokens = min(n, t.prefix_docs * w) * max(1, t.num_phases) / 2 * t.global_epochs
    glob = 3.0 * prefix_tokens * (trunk_per_token(m, e.seq_len) + head_per_token(m))
    return score + train + glob
