"""Legal LoRA TTT: the chunk loss is computed once, accumulated (even though the accumulation line
comes after the step, the value was computed before the update), then used for the update."""
import torch


def eval_lora_ttt(model, lora, val_tokens, chunk=256):
    opt = torch.optim.Adam(lora.parameters(), lr=1e-2)
    nll_sum = 0.0
    n = 0
    for start in range(0, val_tokens.numel() - chunk - 1, chunk):
        seg = val_tokens[start:start + chunk + 1].long()
        per_tok = model(seg[:-1][None], seg[1:][None], lora=lora)
        loss = per_tok.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        nll_sum += per_tok.detach().sum().item()
        n += chunk
    return nll_sum / n


if __name__ == "__main__":
    eval_lora_ttt(None, None, torch.load("fineweb_val_000000.bin"))
