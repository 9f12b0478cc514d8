"""Illegal: multi-epoch TTT that scores every chunk in every epoch and reports the last epoch."""
import torch


def eval_ttt_multi_epoch(model, val_tokens, epochs=3):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        loss_sum = 0.0
        for start in range(0, val_tokens.numel() - 1025, 1024):
            seq = val_tokens[start:start + 1025].long()
            with torch.no_grad():
                loss_sum += model(seq[:-1][None], seq[1:][None]).item()
            loss = model(seq[:-1][None], seq[1:][None])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return loss_sum


print(eval_ttt_multi_epoch(torch.nn.Linear(2, 2), torch.load("fineweb_val_000000.bin")))
