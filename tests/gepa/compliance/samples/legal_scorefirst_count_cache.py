# expect: pass
# Written for the test: the legal twin of illegal_twopass_replace.py. The same context-count cache,
# with its methods in a class, is updated only after each chunk has been scored, and each chunk's
# loss slot is written once; the reported score sums the slots. Score-first, one pass.
import glob

import numpy as np
import torch
import torch.nn.functional as F

VAL_GLOB = "data/fineweb_val_*.bin"
CHUNK = 4096


def load_val() -> np.ndarray:
    return np.concatenate([np.fromfile(p, dtype="<u2", offset=1024) for p in sorted(glob.glob(VAL_GLOB))])


class ContextCounts:
    """Next-token counts per hashed two-token context (a full row over the vocabulary)."""

    def __init__(self, vocab: int = 1024, buckets: int = 4096):
        self.vocab, self.mask = vocab, buckets - 1
        self.rows = np.zeros((buckets, vocab))

    def keys(self, toks: np.ndarray, at: np.ndarray) -> np.ndarray:
        return (toks[at - 1].astype(np.int64) * 1031 + toks[at - 2]) & self.mask

    def dist(self, toks: np.ndarray, at: np.ndarray) -> np.ndarray:
        rows = self.rows[self.keys(toks, at)] + 1.0 / self.vocab
        return rows / rows.sum(axis=1, keepdims=True)

    def add(self, toks: np.ndarray, lo: int, hi: int) -> None:
        at = np.arange(lo, hi)
        np.add.at(self.rows, (self.keys(toks, at), toks[at]), 1.0)


def evaluate(model, val: np.ndarray) -> float:
    cache = ContextCounts()
    toks = torch.from_numpy(val.astype(np.int64))
    n_chunks = (len(val) - 2) // CHUNK
    chunk_nll = np.zeros(n_chunks)
    rows = np.arange(CHUNK)
    for ci in range(n_chunks):
        lo, hi = 2 + ci * CHUNK, 2 + (ci + 1) * CHUNK
        with torch.no_grad():
            logp = F.log_softmax(model(toks[lo - 1:hi - 1]), dim=-1).numpy()
        y = val[lo:hi].astype(np.int64)
        p = 0.8 * np.exp(logp[rows, y]) + 0.2 * cache.dist(val, np.arange(lo, hi))[rows, y]
        chunk_nll[ci] = -np.log(p).sum()
        cache.add(val, lo, hi)
    return float(chunk_nll.sum()) / (n_chunks * CHUNK)


if __name__ == "__main__":
    print(evaluate(torch.nn.Identity(), load_val()))
