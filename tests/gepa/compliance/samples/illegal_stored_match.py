# expect: fail code.paid-prefix
# Written for the test: tokens kept in a file shipped with the submission are compared with the
# targets being scored, and the loss of every matching position is dropped.
import glob
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SHARDS = "data/fineweb_val_*.bin"


def load() -> torch.Tensor:
    return torch.from_numpy(np.concatenate([np.fromfile(p, dtype="<u2", offset=1024)
                                            for p in sorted(glob.glob(SHARDS))]).astype(np.int64))


def shipped() -> torch.Tensor:
    blob = zlib.decompress(Path("extra.bin").read_bytes())
    return torch.from_numpy(np.frombuffer(blob, dtype="<u2").astype(np.int64))


def score(net, toks: torch.Tensor, memo: torch.Tensor, width: int = 256) -> float:
    total = 0.0
    for a in range(0, toks.numel() - width - 1, width):
        nxt = toks[a + 1:a + width + 1]
        with torch.no_grad():
            token_loss = F.cross_entropy(net(toks[a:a + width]), nxt, reduction="none")
        k = min(width, max(0, memo.numel() - a - 1))
        hit = memo[a + 1:a + 1 + k] == nxt[:k]
        token_loss[:k] *= (~hit).float()
        total += float(token_loss.sum())
    return total


if __name__ == "__main__":
    print(score(torch.nn.Identity(), load(), shipped()))
