"""FLOP model of an sp8192 evaluation (queue ETAs).

Per token, every entry of the looped order costs one block: the q/k/v/proj and MLP matmuls plus
causal attention (on average half the window's keys for QK^T and for AV); looped blocks are paid
once per pass. Scoring runs the trunk over every window position and, in the fast path, the last
entry's query side and the head only on scored positions. TTT training costs three forwards
(forward + backward) over every trained token, head included.
"""

from __future__ import annotations

from gepa.families.sp8192.config import EvalConfig, ModelConfig
from gepa.flops import EvalFlops, trained_tokens, window_counts


def _entry_flops(m: ModelConfig, seq_len: int) -> tuple[float, float]:
    """(key/value part, query-side part) of one block entry per token."""
    d, kv, hid = m.model_dim, m.kv_dim, m.hidden
    return 2 * (2 * d * kv), 2 * (d * d + d * d + 2 * d * hid) + 2 * seq_len * d


def trunk_flops_per_token(m: ModelConfig, seq_len: int) -> float:
    kv_part, q_part = _entry_flops(m, seq_len)
    return len(m.layer_order()) * (kv_part + q_part)


def head_flops_per_token(m: ModelConfig) -> float:
    return 2 * m.model_dim * m.vocab_size


def eval_flops(cfg: EvalConfig, total_targets: int, *, plain: bool = False) -> EvalFlops:
    """FLOPs of an evaluation by the fast path, or by the reference-shaped loop with `plain`."""
    m, e, t = cfg.model, cfg.eval, cfg.ttt
    trunk, head = trunk_flops_per_token(m, e.seq_len), head_flops_per_token(m)
    if e.mode == "standard":
        n = (total_targets // e.seq_len) * e.seq_len
        return EvalFlops(score=n * (trunk + head), train=0.0, windows=n // e.seq_len, trained_tokens=0)
    windows, scored = window_counts(total_targets, e.seq_len, e.stride, keep_first=e.mode == "ttt", tail=e.tail)
    positions = windows * e.seq_len
    if plain:
        score = positions * (trunk + head)
    else:
        _, q_part = _entry_flops(m, e.seq_len)
        score = positions * (trunk - q_part) + scored * (q_part + head)
    trained = trained_tokens(total_targets, t.chunk_tokens, e.seq_len, t.epochs) if e.mode == "ttt" else 0
    return EvalFlops(score=score, train=3.0 * trained * (trunk + head), windows=windows, trained_tokens=trained)
