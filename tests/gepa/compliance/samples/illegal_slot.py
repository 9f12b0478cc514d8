"""Illegal: SLOT - a per-batch logit bias optimised on the targets of the window, then scored."""
import torch
import torch.nn.functional as F


def eval_val_slot(model, val_tokens, steps=8):
    loss_sum = torch.zeros((), dtype=torch.float64)
    for ws in range(0, val_tokens.numel() - 2049, 64):
        w = val_tokens[ws:ws + 2049].long()
        x, y = w[:-1][None], w[1:][None]
        with torch.no_grad():
            hidden = model.hidden(x)
        delta = torch.zeros(1, 1, hidden.size(-1), requires_grad=True)
        opt = torch.optim.AdamW([delta], lr=0.01)
        for _ in range(steps):
            logits = model.head(hidden + delta)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            nll = F.cross_entropy(model.head(hidden + delta).flatten(0, 1), y.flatten(), reduction="none")
            loss_sum += nll[-64:].double().sum()
    return loss_sum


if __name__ == "__main__":
    eval_val_slot(None, torch.load("fineweb_val_000000.bin"))
