"""Compile warm-up on validation tokens with the weights restored before scoring (warning only)."""
import copy

import torch


def eval_with_warmup(model, val_tokens):
    saved = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    warm = val_tokens[:2049].long()
    model(warm[:-1][None], warm[1:][None]).backward()
    opt.step()
    model.load_state_dict(saved)
    loss_sum = 0.0
    with torch.no_grad():
        for i in range(0, val_tokens.numel() - 2049, 2048):
            seq = val_tokens[i:i + 2049].long()
            loss_sum += model(seq[:-1][None], seq[1:][None]).item()
    return loss_sum


if __name__ == "__main__":
    eval_with_warmup(torch.nn.Linear(2, 2), torch.load("fineweb_val_000000.bin"))
