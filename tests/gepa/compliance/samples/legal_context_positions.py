# expect: pass
# Written for the test (legal twin of illegal_target_positions.py): the same positions helper,
# but every key is built from tokens before the predicted position (`toks[at - j]`), and the
# tables are updated only after the window is scored.
import glob

import numpy as np
import torch
import torch.nn.functional as F

SHARDS = "data/fineweb_val_*.bin"
BITS = np.uint64((1 << 18) - 1)


def load() -> np.ndarray:
    return np.concatenate([np.fromfile(p, dtype="<u2", offset=1024) for p in sorted(glob.glob(SHARDS))])


def codes(toks: np.ndarray, at: np.ndarray, order: int):
    h = np.zeros(at.size, dtype=np.uint64)
    for j in range(1, order + 1):
        h = h * np.uint64(1000003) + toks[at - j].astype(np.uint64)
    return (h & BITS).astype(np.int64)


def score(net, toks: np.ndarray, width: int = 512, order: int = 2) -> float:
    seen = np.zeros(int(BITS) + 1)
    t = torch.from_numpy(toks.astype(np.int64))
    bits = 0.0
    for a in range(order, len(toks) - width - 1, width):
        with torch.no_grad():
            nll = F.cross_entropy(net(t[a:a + width]), t[a + 1:a + width + 1], reduction="none").numpy()
        span = np.arange(a + 1, a + width + 1)
        ctx = codes(toks, span, order)
        bits += float(nll.sum())
        np.add.at(seen, ctx, 1)
    return bits


if __name__ == "__main__":
    print(score(torch.nn.Identity(), load()))
