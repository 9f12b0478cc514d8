"""Illegal: a within-word expert that fires depending on a property of the target token."""
import torch


def eval_tilt(model, val_tokens, starts_new_word_lut, hint_logp):
    loss_sum = 0.0
    for i in range(1, val_tokens.numel()):
        tgt = val_tokens[i]
        logp = model(val_tokens[:i])
        if starts_new_word_lut[tgt]:
            logp = logp + hint_logp[i]
        loss_sum += -logp[tgt].item()
    return loss_sum


print(eval_tilt(None, torch.load("fineweb_val_000000.bin"), None, None))
