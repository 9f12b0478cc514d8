"""Oracles for the baseline family's window rules (tests/data/baseline_rules): the target positions
each March record's loop scores, rebuilt from the loops themselves, and a naive window-by-window
scorer of golfcheck's every-target-once rule."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F

from gepa import runner
from tests.support.paths import DATA, REPO

RULES_DATA = DATA / "baseline_rules"
VAL = str(DATA / "baseline_small" / "fineweb_val_*.bin")
TOKENIZER = REPO / "gepa" / "assets" / "fineweb_1024_bpe.model"


def artifact(folder: str) -> Path:
    return next(iter(sorted((RULES_DATA / folder).glob("final_model.*.ptz"))))


def record_positions(rule: str, total: int, seq_len: int, stride: int) -> Counter:
    """Target indices (target t = token t+1) each record's loop scores, with multiplicity, written
    from the loops themselves: n = total + 1 tokens after the cut; a window at p feeds tokens
    [p, p + seq_len) and its position j predicts target p + j."""
    n = total + 1
    out: Counter = Counter()
    if rule == "last_stride":  # MLP3x_QAT: positions = range(0, N - T, s); MixedQuant: (total - T)//s + 1 windows
        for p in range(0, n - seq_len, stride):
            out.update(range(p + seq_len - stride, p + seq_len))
    elif rule == "gap_after_first":  # Seq2048: while pos + T < N, first window whole, then T - s, +s, ...
        pos = 0
        while pos + seq_len < n:
            out.update(range(pos if pos == 0 else pos + seq_len - stride, pos + seq_len))
            pos = seq_len - stride if pos == 0 else pos + stride
    elif rule == "exact_once":  # the 10-layer record: full windows, the first whole, the others their last s
        for p in range(0, total - seq_len + 1, stride):
            out.update(range(p if p == 0 else p + seq_len - stride, p + seq_len))
    else:  # SlidingWindowEval at HEAD: every start below total; first whole, others the last s (or all)
        for p in range(0, total, stride):
            wlen = min(p + seq_len, total) - p
            out.update(range(p if p == 0 else p + max(wlen - stride, 0), p + wlen))
    return out



def naive_score(folder: str, case: str) -> tuple[float, float, float, float]:
    """(loss, bpb) of golfcheck's every-target-once rule and of the record's rule, from one
    forward pass per window in a plain loop: target t of the truncated stream is scored in the
    window at 0 when t < T, else in the full window ending right after it at a multiple of the
    stride (window start k·s, t in its last s positions), and the targets after the last full
    window in the next window start, cut at the stream end."""
    raw = json.loads((RULES_DATA / folder / f"eval_{case}.json").read_text())
    prep = runner.prepare(artifact(folder), raw)
    data = prep.family.load_data(prep.cfg, VAL, TOKENIZER)
    model = prep.family.build_model(prep.cfg, prep.state, torch.device("cpu"))
    seq_len, stride, tail = raw["eval"]["seq_len"], raw["eval"]["stride"], raw["eval"]["tail"]
    total = ((data.tokens.numel() - 1) // seq_len) * seq_len
    tokens, nbytes = data.tokens[: total + 1].long(), data.target_bytes[: total + 1].long()
    cache: dict[int, torch.Tensor] = {}

    def nll(start: int, t: int) -> float:
        if start not in cache:
            ids = tokens[start: min(start + seq_len, total)]
            with torch.inference_mode():
                logits = model.forward_logits(ids[None])[0]
            cache[start] = F.cross_entropy(logits.float(), tokens[start + 1: start + ids.numel() + 1], reduction="none")
        return float(cache[start][t - start])

    last_full = (total - seq_len) // stride * stride
    ours = []
    for t in range(total):
        if t < seq_len:
            start = 0
        elif t < last_full + seq_len:
            start = (t - seq_len) // stride * stride + stride
        else:
            start = last_full + stride
        ours.append((start, t))
    # The record's targets, each from the same window as ours (true in the aligned cases used here).
    want = record_positions(tail, total, seq_len, stride)
    by_target = {t: start for start, t in ours}
    theirs = [(by_target[t], t) for t in want for _ in range(want[t])]
    out = []
    for pairs in (ours, theirs):
        loss = sum(nll(s, t) for s, t in pairs)
        nb = sum(int(nbytes[t + 1]) for _, t in pairs)
        out += [loss / len(pairs), loss / (nb * torch.log(torch.tensor(2.0, dtype=torch.float64)).item())]
    return tuple(out)
