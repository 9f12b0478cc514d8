# expect: pass
# Written for the test: the legal twin of illegal_target_key_chain.py. The key goes through the
# same chain of helpers (lookup method -> key method -> `fold`), but it hashes the context tokens
# only; the table row is a count over the whole vocabulary, normalised, and the target only picks
# its probability out of that distribution.
import glob

import numpy as np
import torch
import torch.nn.functional as F

VAL_GLOB = "data/fineweb_val_*.bin"
CHUNK = 4096
PRIMES = np.array([1000003, 998244353, 1000000007], dtype=np.uint64)


def load_val() -> np.ndarray:
    return np.concatenate([np.fromfile(p, dtype="<u2", offset=1024) for p in sorted(glob.glob(VAL_GLOB))])


def fold(h: np.ndarray, extra: np.ndarray, k: int) -> np.ndarray:
    return h ^ (extra.astype(np.uint64) * PRIMES[k])


class RowCounts:
    def __init__(self, vocab: int = 1024, buckets: int = 1 << 12):
        self.vocab = vocab
        self.mask = np.uint64(buckets - 1)
        self.rows = np.zeros((buckets, vocab))

    def context(self, toks: np.ndarray, at: np.ndarray) -> np.ndarray:
        return fold(toks[at - 2].astype(np.uint64), toks[at - 1], 0)

    def row_keys(self, toks: np.ndarray, at: np.ndarray) -> np.ndarray:
        return fold(self.context(toks, at), toks[at - 3], 1) & self.mask

    def lookup(self, toks: np.ndarray, at: np.ndarray, nxt: np.ndarray):
        rows = self.rows[self.row_keys(toks, at).astype(np.int64)] + 1.0 / self.vocab
        return rows[np.arange(len(at)), nxt] / rows.sum(axis=1)

    def add(self, toks: np.ndarray, lo: int, hi: int) -> None:
        at = np.arange(lo, hi)
        np.add.at(self.rows, (self.row_keys(toks, at).astype(np.int64), toks[at]), 1.0)


def evaluate(model, val: np.ndarray) -> float:
    cache = RowCounts()
    toks = torch.from_numpy(val.astype(np.int64))
    n_chunks = (len(val) - 3) // CHUNK
    loss_sum = 0.0
    for ci in range(n_chunks):
        lo, hi = 3 + ci * CHUNK, 3 + (ci + 1) * CHUNK
        with torch.no_grad():
            nll = F.cross_entropy(model(toks[lo - 1:hi - 1]), toks[lo:hi], reduction="none")
        tgt = toks[lo:hi].numpy()
        p_ng = cache.lookup(val, np.arange(lo, hi), tgt)
        p = 0.7 * np.exp(-nll.numpy()) + 0.3 * p_ng
        loss_sum += float(-np.log(p).sum())
        cache.add(val, lo, hi)
    return loss_sum / (n_chunks * CHUNK)


if __name__ == "__main__":
    print(evaluate(torch.nn.Identity(), load_val()))
