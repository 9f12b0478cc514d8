"""FLOP model of a baseline-family evaluation (queue ETAs), torch-free.

Per token and block: the q/k/v/proj and MLP matmuls plus causal attention (on average half the
window's keys for QKᵀ and for AV); the head is 2·d·V. Standard eval runs every sequence once;
sliding eval runs the trunk over every window position and, in the fast path, the last block's
query side and the head only on scored positions. LoRA TTT runs one forward per document chunk
over its window, plus a backward (two more forwards' worth) when the chunk is trained on; the
adapters add 2·r·(in + out) per adapted projection. Without the document lengths (the ETA is made
from the shard headers alone) a chunk's window is taken as half-way between one chunk and the
full context, (C + W) / 2, the average over a document of a few chunks.
"""

from __future__ import annotations

from gepa.families.baseline.config import BaselineConfig, ModelConfig
from gepa.flops import EvalFlops
from gepa.flops import window_counts as shared_window_counts


def layer_flops(m: ModelConfig, seq_len: int) -> tuple[float, float]:
    """(key/value part, query-side part) of one block per token."""
    d, kv, hid = m.model_dim, m.kv_dim, m.mlp_hidden
    return 2 * (2 * d * kv), 2 * (2 * d * d + 2 * d * hid) + 2 * seq_len * d


def trunk_flops_per_token(m: ModelConfig, seq_len: int) -> float:
    kv_part, q_part = layer_flops(m, seq_len)
    return m.num_layers * (kv_part + q_part)


def head_flops_per_token(m: ModelConfig) -> float:
    return 2 * m.model_dim * m.vocab_size


def lora_flops_per_token(m: ModelConfig, rank: int) -> float:
    d = m.model_dim
    return 2 * rank * ((d + m.vocab_size) + m.num_layers * ((d + d) + (d + m.kv_dim)))


def rule_counts(tail: str, total: int, seq_len: int, stride: int) -> tuple[int, int, int]:
    """(windows, scored targets, targets never scored) of a rule's own list
    (`gepa.families.baseline.windows.RULES`) in closed form."""
    if total <= 0:
        return 0, 0, 0
    full = (total - seq_len) // stride + 1 if total >= seq_len else 0
    if tail == "exact_once":
        scored = seq_len + (full - 1) * stride if full else 0
        return full, scored, total - scored
    if tail == "last_stride":
        return full, full * stride, total - full * stride
    if tail == "gap_after_first":
        if total < seq_len:
            return 0, 0, total
        later = (total - 2 * seq_len + stride) // stride + 1 if total - seq_len >= seq_len - stride else 0
        scored = seq_len + later * stride
        # With stride > seq_len / 2 the second window re-scores the end of the first one.
        again = max(0, 2 * stride - seq_len) if later else 0
        return 1 + later, scored, total - (scored - again)
    windows, scored = _reference_counts(total, seq_len, stride)
    return windows, scored, 0


def window_counts(tail: str, total: int, seq_len: int, stride: int) -> tuple[int, int]:
    """(windows, scored targets) of a rule's own list in closed form."""
    windows, scored, _ = rule_counts(tail, total, seq_len, stride)
    return windows, scored


def run_counts(tail: str, total: int, seq_len: int, stride: int) -> tuple[int, int]:
    """(windows, scored positions) that golfcheck runs for a rule: the rule itself when it may be
    published (`windows.publishable`); else every target once (`exact_once` of `gepa.windows`) plus, when the rule's
    windows are not among those (gap_after_first with a stride that does not divide seq_len), a
    pass over the rule's own windows for the comparison figure."""
    windows, scored, unscored = rule_counts(tail, total, seq_len, stride)
    if unscored == 0 and (tail == "reference" or scored == total):  # windows.publishable
        return windows, scored
    run_windows, run_scored = shared_window_counts(total, seq_len, stride, tail="exact_once")
    if tail == "gap_after_first" and seq_len % stride and windows > 1:
        return run_windows + windows, run_scored + scored
    return run_windows, run_scored


def _reference_counts(total: int, seq_len: int, stride: int) -> tuple[int, int]:
    n = -(-total // stride)
    if n == 1:
        return 1, min(seq_len, total)
    rem = total % stride
    return n, min(seq_len, total) + (n - 2) * stride + (rem or stride)


def eval_flops(cfg: BaselineConfig, total_targets: int, *, plain: bool = False) -> EvalFlops:
    """FLOPs of an evaluation of `total_targets` targets (after the mode's truncation)."""
    m, e, t = cfg.model, cfg.eval, cfg.baseline_lora_ttt
    head = head_flops_per_token(m)
    if e.mode == "standard":
        n = (total_targets // e.seq_len) * e.seq_len
        return EvalFlops(score=n * (trunk_flops_per_token(m, e.seq_len) + head), train=0.0,
                         windows=n // e.seq_len, trained_tokens=0)
    if e.mode == "sliding":
        trunk = trunk_flops_per_token(m, e.seq_len)
        windows, scored = run_counts(e.tail, total_targets, e.seq_len, e.stride)
        positions = windows * e.seq_len
        if plain:
            score = positions * (trunk + head)
        else:
            _, q_part = layer_flops(m, e.seq_len)
            score = positions * (trunk - q_part) + scored * (q_part + head)
        return EvalFlops(score=score, train=0.0, windows=windows, trained_tokens=0)
    width = min(t.context_tokens, (t.chunk_tokens + t.context_tokens) / 2)
    chunks = -(-max(total_targets, 0) // t.chunk_tokens)
    per_token = trunk_flops_per_token(m, int(width)) + head + lora_flops_per_token(m, t.rank)
    forward = chunks * width * per_token
    trained = max(total_targets - t.chunk_tokens, 0)
    return EvalFlops(score=forward, train=2.0 * forward * trained / max(total_targets, 1), windows=chunks,
                     trained_tokens=trained)
