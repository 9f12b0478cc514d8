"""Illegal: score-first TTT loop, then a second full pass over validation whose result is reported."""
import torch


def eval_two_pass(model, val_tokens):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    first_loss_sum = 0.0
    for start in range(0, val_tokens.numel() - 1025, 1024):
        seq = val_tokens[start:start + 1025].long()
        with torch.no_grad():
            first_loss_sum += model(seq[:-1][None], seq[1:][None]).item()
        loss = model(seq[:-1][None], seq[1:][None])
        opt.zero_grad()
        loss.backward()
        opt.step()
    final_loss_sum = 0.0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1025, 1024):
            seq = val_tokens[start:start + 1025].long()
            final_loss_sum += model(seq[:-1][None], seq[1:][None]).item()
    return final_loss_sum


print(eval_two_pass(torch.nn.Linear(2, 2), torch.load("fineweb_val_000000.bin")))
