"""Turning a FLOP count into expected seconds, and window counts without torch.

Families count the FLOPs of an evaluation (multiply-adds as 2 FLOPs); this module holds what the
counts have in common: the closed-form window geometry of `gepa.windows.plan_windows` and the
per-device calibration that turns FLOPs into a queue ETA.
"""

from __future__ import annotations

from dataclasses import dataclass

# Dense bf16 peak FLOP/s and the fraction of it a tuned evaluation sustains. Used for queue ETAs
# before a node has measured itself; bench/gpu_eval.py measures the real figure per node.
DEVICE_CALIBRATION = {
    "h200": {"peak_flops": 790e12, "efficiency": 0.45},
    "h100": {"peak_flops": 790e12, "efficiency": 0.40},
    "a100": {"peak_flops": 312e12, "efficiency": 0.40},
    # Two cores with two 8-wide fp32 FMA units each at about 2.5 GHz, the development machines.
    "cpu": {"peak_flops": 160e9, "efficiency": 0.5},
}


def window_counts(total: int, seq_len: int, stride: int, *, keep_first: bool = False,
                  tail: str = "reference") -> tuple[int, int]:
    """(windows, scored targets) of `gepa.windows.plan_windows`, in closed form and without torch,
    so the API can estimate an evaluation without loading the evaluator."""
    if total <= 0:
        return 0, 0
    if tail == "exact_once":
        # Window i > 0 adds targets only while the previous window's end, (i-1)*stride + seq_len,
        # is short of the stream's end; the rest would re-score covered targets and are dropped.
        # The kept windows partition all `total` targets.
        adding = (total - seq_len - 1) // stride + 1 if total > seq_len else 0
        return 1 + adding, total
    windows = (total - stride) // stride + 1 if total >= stride else 0
    if windows == 0:
        return (1, total) if keep_first else (0, 0)
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


def flops_per_second(device_kind: str = "h200", measured_flops_per_s: float | None = None) -> float:
    """Sustained FLOP/s of a device kind (the measured figure when a node has one)."""
    if measured_flops_per_s is not None:
        return measured_flops_per_s
    cal = DEVICE_CALIBRATION.get(device_kind.lower(), DEVICE_CALIBRATION["cpu"])
    return cal["peak_flops"] * cal["efficiency"]


def trained_tokens(total_targets: int, chunk_tokens: int, seq_len: int, epochs: int) -> int:
    """Tokens a score-first TTT pass trains on: whole sequences of every chunk but the last."""
    num_chunks = max(1, -(-total_targets // chunk_tokens))
    trained = 0
    for ci in range(num_chunks - 1):
        length = min((ci + 1) * chunk_tokens, total_targets) - ci * chunk_tokens
        trained += (length // seq_len) * seq_len
    return trained * epochs
