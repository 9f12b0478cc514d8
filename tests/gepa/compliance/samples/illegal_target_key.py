"""Illegal: hashed n-gram cache whose lookup key includes the target token (on by default)."""
import os

import numpy as np
import torch


NGRAM_ORDER = int(os.environ.get("NGRAM_EVAL_ORDER", 5))
PRIME = 1000003


def eval_ngram_mix(model_logp, val_np, buckets=1 << 22):
    table = np.zeros(buckets, dtype=np.float32)
    nll_sum = 0.0
    for pos in range(NGRAM_ORDER, len(val_np)):
        ctx_hash = hash(tuple(val_np[pos - NGRAM_ORDER:pos]))
        y = int(val_np[pos])
        p_cache = table[(ctx_hash ^ (y * PRIME)) % buckets]
        nll_sum += -np.log(0.9 * np.exp(model_logp[pos]) + 0.1 * p_cache)
        table[(ctx_hash ^ (y * PRIME)) % buckets] += 1
    return nll_sum


if NGRAM_ORDER > 0:
    print(eval_ngram_mix(None, np.load("fineweb_val_000000.npy")))
