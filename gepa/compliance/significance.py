"""Significance of a record claim: one-sided Welch t-test against the current best's seeds.

The README asks for a 0.005-nat improvement shown at p < 0.01; maintainers in practice accepted
p < 0.25 (compliance-rules.md, section C), so both are reported. Per-seed BPB is converted to
nats/token with one shared bytes-per-token ratio, so entries with different tokenizers are
compared on the same scale (and the p-value does not depend on that ratio, only the margin does).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from gepa.compliance import policy

SP1024_BYTES_PER_TOKEN = 2.44  # fallback when no val_loss is known (baseline tokenizer)


@dataclass(frozen=True)
class Significance:
    n_new: int
    n_best: int
    mean_new_bpb: float
    mean_best_bpb: float
    delta_bpb: float  # best - new (positive = improvement)
    delta_nats: float
    margin_nats: float
    bytes_per_token: float
    t: float | None
    df: float | None
    p_value: float | None  # H0: improvement <= margin
    p_value_any: float | None  # H0: no improvement at all
    meets_margin: bool
    significant_rule: bool  # p < 0.01 and margin met
    significant_practice: bool  # p < 0.25 and margin met

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def bytes_per_token(val_loss: float | None, val_bpb: float | None) -> float | None:
    if val_loss and val_bpb:
        return val_loss / (val_bpb * math.log(2.0))
    return None


def welch_one_sided(new: list[float], best: list[float], shift: float) -> tuple[float | None, float | None, float | None]:
    """p for H0: mean(best) - mean(new) <= shift (values in the same unit as `shift`)."""
    if len(new) < 2 or len(best) < 2:
        return None, None, None
    v1, v2 = statistics.variance(new) / len(new), statistics.variance(best) / len(best)
    diff = statistics.fmean(best) - statistics.fmean(new) - shift
    se = math.sqrt(v1 + v2)
    if se == 0.0:
        return (math.inf if diff > 0 else -math.inf), None, (0.0 if diff > 0 else 1.0)
    t = diff / se
    df = (v1 + v2) ** 2 / ((v1 ** 2) / (len(new) - 1) + (v2 ** 2) / (len(best) - 1)) if (v1 or v2) else float(len(new) + len(best) - 2)
    from scipy import stats  # imported here: loading scipy.stats costs ~0.8 s on every `golfcheck` start

    return t, df, float(stats.t.sf(t, df))


def record_significance(new_bpb: list[float], best_bpb: list[float], bpt: float | None = None,
                margin_nats: float = policy.RECORD_MARGIN_NATS) -> Significance:
    ratio = bpt or SP1024_BYTES_PER_TOKEN
    to_nats = math.log(2.0) * ratio
    new_n = [b * to_nats for b in new_bpb]
    best_n = [b * to_nats for b in best_bpb]
    t, df, p = welch_one_sided(new_n, best_n, margin_nats)
    _, _, p0 = welch_one_sided(new_n, best_n, 0.0)
    mean_new, mean_best = statistics.fmean(new_bpb), statistics.fmean(best_bpb)
    delta = mean_best - mean_new
    meets = delta * to_nats >= margin_nats
    return Significance(
        n_new=len(new_bpb), n_best=len(best_bpb), mean_new_bpb=mean_new, mean_best_bpb=mean_best,
        delta_bpb=delta, delta_nats=delta * to_nats, margin_nats=margin_nats, bytes_per_token=ratio,
        t=t, df=df, p_value=p, p_value_any=p0, meets_margin=meets,
        significant_rule=bool(meets and p is not None and p < policy.P_THRESHOLD_RULE),
        significant_practice=bool(meets and p is not None and p < policy.P_THRESHOLD_PRACTICE),
    )
