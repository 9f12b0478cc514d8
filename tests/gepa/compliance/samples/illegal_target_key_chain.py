# expect: fail code.target-in-key
# Written for the test: the target reaches an n-gram table's key through a chain of helpers. The
# scorer hands the targets to a lookup method; the method builds its key with another method,
# which mixes the target into the context hash through a third helper and masks the result; the
# key comes back re-encoded (`.astype`) and indexes the joint count table whose ratio is scored.
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


class PairCounts:
    def __init__(self, buckets: int = 1 << 20):
        self.mask = np.uint64(buckets - 1)
        self.seen = np.zeros(buckets)
        self.joint = np.zeros(buckets)

    def context(self, toks: np.ndarray, at: np.ndarray) -> np.ndarray:
        return fold(toks[at - 2].astype(np.uint64), toks[at - 1], 0)

    def joint_keys(self, toks: np.ndarray, at: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        return fold(self.context(toks, at), nxt, 2) & self.mask

    def lookup(self, toks: np.ndarray, at: np.ndarray, nxt: np.ndarray):
        ctx = (self.context(toks, at) & self.mask).astype(np.int64)
        full = self.joint_keys(toks, at, nxt).astype(np.int64)
        hit = self.seen[ctx] > 0
        return np.where(hit, self.joint[full] / np.maximum(self.seen[ctx], 1.0), 0.0), hit

    def add(self, toks: np.ndarray, lo: int, hi: int) -> None:
        at = np.arange(lo, hi)
        np.add.at(self.seen, (self.context(toks, at) & self.mask).astype(np.int64), 1.0)
        np.add.at(self.joint, self.joint_keys(toks, at, toks[at]).astype(np.int64), 1.0)


def evaluate(model, val: np.ndarray) -> float:
    cache = PairCounts()
    toks = torch.from_numpy(val.astype(np.int64))
    n_chunks = (len(val) - 2) // CHUNK
    loss_sum = 0.0
    for ci in range(n_chunks):
        lo, hi = 2 + ci * CHUNK, 2 + (ci + 1) * CHUNK
        with torch.no_grad():
            nll = F.cross_entropy(model(toks[lo - 1:hi - 1]), toks[lo:hi], reduction="none")
        tgt = toks[lo:hi].numpy()
        p_ng, hit = cache.lookup(val, np.arange(lo, hi), tgt)
        p = np.where(hit, 0.7 * np.exp(-nll.numpy()) + 0.3 * p_ng, np.exp(-nll.numpy()))
        loss_sum += float(-np.log(p).sum())
        cache.add(val, lo, hi)
    return loss_sum / (n_chunks * CHUNK)


if __name__ == "__main__":
    print(evaluate(torch.nn.Identity(), load_val()))
