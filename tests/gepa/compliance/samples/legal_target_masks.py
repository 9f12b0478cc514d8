# expect: pass
# Written for the test (legal twin of illegal_stored_match.py): the loss is masked where the
# target is padding (a constant id), and accuracy compares the target with the model's own
# prediction; neither compares the answer with stored content.
import glob

import numpy as np
import torch
import torch.nn.functional as F

SHARDS = "data/fineweb_val_*.bin"
PAD_ID = 0


def load() -> torch.Tensor:
    return torch.from_numpy(np.concatenate([np.fromfile(p, dtype="<u2", offset=1024)
                                            for p in sorted(glob.glob(SHARDS))]).astype(np.int64))


def score(net, toks: torch.Tensor, width: int = 256) -> tuple[float, float]:
    total, right = 0.0, 0.0
    for a in range(0, toks.numel() - width - 1, width):
        nxt = toks[a + 1:a + width + 1]
        with torch.no_grad():
            logits = net(toks[a:a + width])
            token_loss = F.cross_entropy(logits, nxt, reduction="none")
        keep = nxt != PAD_ID
        token_loss = token_loss * keep.float()
        pred_tok = logits.argmax(-1)
        right += float((pred_tok == nxt).sum())
        total += float(token_loss.sum())
    return total, right


if __name__ == "__main__":
    print(score(torch.nn.Identity(), load()))
