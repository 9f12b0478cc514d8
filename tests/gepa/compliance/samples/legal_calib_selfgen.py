# expect: pass
# Written for the test (legal twin of illegal_calib_after_budget.py): after the full budget the
# statistics come from text the model generates itself, no training data is read (#1019, legal).
import glob
import os
import time

import numpy as np
import torch

TRAIN = "data/fineweb_train_*.bin"
LIMIT_S = float(os.environ.get("MAX_WALLCLOCK_SECONDS", "600"))


def shards():
    for p in sorted(glob.glob(TRAIN)):
        t = torch.from_numpy(np.fromfile(p, dtype="<u2", offset=1024).astype(np.int64))
        for s in range(0, t.numel() - 4097, 4096):
            yield t[s:s + 4096].view(4, 1024), t[s + 1:s + 4097].view(4, 1024)


def fit(net, opt):
    t0 = time.time()
    for x, y in shards():
        loss = torch.nn.functional.cross_entropy(net(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if time.time() - t0 > LIMIT_S:
            break


def activation_stats(net, batches=32):
    acc = None
    with torch.no_grad():
        for _ in range(batches):
            x = torch.randint(0, 1024, (4, 1))
            for _step in range(63):
                x = torch.cat([x, net(x)[:, -1].softmax(-1).multinomial(1)], dim=1)
            h = net[0](x).reshape(-1, 64)
            acc = h.T @ h if acc is None else acc + h.T @ h
    return acc


def run():
    net = torch.nn.Sequential(torch.nn.Embedding(1024, 64), torch.nn.Linear(64, 1024))
    fit(net, torch.optim.AdamW(net.parameters()))
    stats = activation_stats(net)
    torch.save({"w": net.state_dict(), "h": stats}, "final_model.pt")


if __name__ == "__main__":
    run()
