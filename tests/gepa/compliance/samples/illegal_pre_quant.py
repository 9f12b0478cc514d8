"""Illegal: pre-quant TTT (AdamW epochs on val_tokens), then GPTQ and serialisation, then scoring."""
import torch


def prequant_ttt_adapt_adamw(model, tokens, epochs=8):
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    for _ in range(epochs):
        for i in range(0, tokens.numel() - 2049, 2048):
            seq = tokens[i:i + 2049].to("cuda").long()
            loss = model(seq[:-1][None], seq[1:][None])
            opt.zero_grad()
            loss.backward()
            opt.step()


def quantize_and_save(model):
    torch.save({k: v.half() for k, v in model.state_dict().items()}, "final_model.int6.ptz")


def eval_val(model, val_data):
    total_loss = 0.0
    with torch.no_grad():
        for i in range(0, val_data.val_tokens.numel() - 2049, 2048):
            seq = val_data.val_tokens[i:i + 2049].long()
            total_loss += model(seq[:-1][None], seq[1:][None]).item()
    return total_loss


def run(model, val_data):
    prequant_ttt_adapt_adamw(model, val_data.val_tokens)
    quantize_and_save(model)
    return eval_val(model, val_data)


if __name__ == "__main__":
    run(torch.nn.Linear(2, 2), None)
