"""FLOP model of an evaluation, and the calibration that turns it into expected seconds.

Counts multiply-adds as 2 FLOPs. Per token and layer: the q/k/v/proj and MLP matmuls plus causal
attention (on average half the window's keys for QK^T and for AV). Scoring runs the trunk over
every window position and, in the fast path, the last block's query side and the head only on
scored positions; TTT training
costs three forwards (forward + backward) over every trained token, head included. For the
seed configuration this gives about 1.5e17 FLOP of scoring and 1.4e17 FLOP of training over the
62,021,632-token validation set (the GPU issue's "0.15 + 0.14 PFLOP", which are 1e18-scaled).
"""

from __future__ import annotations

from dataclasses import dataclass

from gepa.config import EvalConfig, ModelConfig

# Dense bf16 peak FLOP/s and the fraction of it a tuned evaluation sustains. Used for queue ETAs
# before a node has measured itself; bench/gpu_eval.py measures the real figure per node.
DEVICE_CALIBRATION = {
    "h200": {"peak_flops": 790e12, "efficiency": 0.45},
    "h100": {"peak_flops": 790e12, "efficiency": 0.40},
    "a100": {"peak_flops": 312e12, "efficiency": 0.40},
    # Two cores with two 8-wide fp32 FMA units each at about 2.5 GHz, the development machines.
    "cpu": {"peak_flops": 160e9, "efficiency": 0.5},
}


def _layer_flops(m: ModelConfig, seq_len: int) -> tuple[float, float]:
    """(key/value part, query-side part) of one block per token: k/v projections serve every
    position; q, attention, output projection and MLP only the positions whose outputs are used."""
    d, kv, hid = m.model_dim, m.kv_dim, m.hidden
    return 2 * (2 * d * kv), 2 * (d * d + d * d + 2 * d * hid) + 2 * seq_len * d


def trunk_flops_per_token(m: ModelConfig, seq_len: int) -> float:
    kv_part, q_part = _layer_flops(m, seq_len)
    extra = 0
    if m.bigram_buckets:
        extra += 2 * m.bigram_embed_dim * m.model_dim
    if m.ve_enabled:
        extra += 2 * m.ve_dim * m.kv_dim
    return m.num_layers * (kv_part + q_part) + extra


def head_flops_per_token(m: ModelConfig) -> float:
    return 2 * m.model_dim * m.vocab_size


def window_counts(total: int, seq_len: int, stride: int, *, keep_first: bool = False,
                  tail: str = "reference") -> tuple[int, int]:
    """(windows, scored targets) of `gepa.windows.plan_windows`, in closed form and without torch,
    so the API can estimate an evaluation without loading the evaluator."""
    if total <= 0:
        return 0, 0
    windows = (total - stride) // stride + 1 if total >= stride else 0
    if windows == 0:
        return (1, total) if keep_first else (0, 0)
    if tail == "exact_once":
        # Window i > 0 adds targets only while the previous window's end, (i-1)*stride + seq_len,
        # is short of the stream's end; the rest re-score covered targets and are dropped.
        covered = min((windows - 1) * stride + seq_len, total)
        adding = min(windows - 1, (total - seq_len - 1) // stride + 1) if total > seq_len else 0
        return 1 + adding, covered
    return windows, min(seq_len, total) + (windows - 1) * stride


@dataclass(frozen=True)
class EvalFlops:
    score: float
    train: float
    windows: int
    trained_tokens: int

    @property
    def total(self) -> float:
        return self.score + self.train


def eval_flops(cfg: EvalConfig, total_targets: int, *, plain: bool = False) -> EvalFlops:
    """FLOPs of an evaluation by the fast path (last block and head only where scored), or by the
    reference-shaped loop with `plain`."""
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
        _, q_part = _layer_flops(m, e.seq_len)
        score = positions * (trunk - q_part) + scored * (q_part + head)
    trained = 0
    if e.mode == "ttt" and t.epochs > 0:
        num_chunks = max(1, -(-total_targets // t.chunk_tokens))
        for ci in range(num_chunks - 1):
            length = min((ci + 1) * t.chunk_tokens, total_targets) - ci * t.chunk_tokens
            trained += (length // e.seq_len) * e.seq_len
        trained *= t.epochs
    return EvalFlops(score=score, train=3.0 * trained * (trunk + head), windows=windows, trained_tokens=trained)


def estimate_seconds(cfg: EvalConfig, total_targets: int, device_kind: str = "h200",
                     measured_flops_per_s: float | None = None) -> float:
    """Expected wall time of an evaluation: FLOPs over sustained FLOP/s (measured when known)."""
    if measured_flops_per_s is None:
        cal = DEVICE_CALIBRATION.get(device_kind.lower(), DEVICE_CALIBRATION["cpu"])
        measured_flops_per_s = cal["peak_flops"] * cal["efficiency"]
    return eval_flops(cfg, total_targets).total / measured_flops_per_s
