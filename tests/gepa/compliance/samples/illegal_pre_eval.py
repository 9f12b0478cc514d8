"""Illegal: TTT on all validation tokens for several epochs, then the sliding evaluation."""
import os

import torch
import torch.nn.functional as F


class Hyperparameters:
    ttt_epochs = int(os.environ.get("TTT_EPOCHS", 30))
    ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "1")))


def ttt_adapt(args, model, val_tokens):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for epoch in range(args.ttt_epochs):
        for start in range(0, val_tokens.numel() - 1025, 1024):
            local = val_tokens[start:start + 1025].long()
            opt.zero_grad()
            loss = model(local[:-1].unsqueeze(0), local[1:].unsqueeze(0))
            loss.backward()
            opt.step()


def eval_val_sliding(model, val_tokens):
    loss_sum = 0.0
    count = 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1025, 64):
            w = val_tokens[start:start + 1025].long()
            nll = F.cross_entropy(model(w[:-1].unsqueeze(0)).flatten(0, 1), w[1:], reduction="none")
            loss_sum += nll[-64:].sum().item()
            count += 64
    return loss_sum / count


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(4, 4)
    val_tokens = torch.load("fineweb_val_000000.bin")
    if args.ttt_enabled:
        ttt_adapt(args, model, val_tokens)
    print(eval_val_sliding(model, val_tokens))


main()
