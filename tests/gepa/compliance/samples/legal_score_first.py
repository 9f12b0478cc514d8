"""Legal score-first TTT: each chunk is scored under inference_mode, then trained on."""
import math
import os

import torch
import torch.nn.functional as F


class Hyperparameters:
    val_files = os.environ.get("VAL_FILES", "./data/fineweb_val_*.bin")
    train_files = os.environ.get("TRAIN_FILES", "./data/fineweb_train_*.bin")
    ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "1")))
    ttt_epochs = int(os.environ.get("TTT_EPOCHS", 3))
    ttt_chunk_tokens = int(os.environ.get("TTT_CHUNK_TOKENS", 32768))
    seq_len = 1024


def eval_val_sliding_ttt(args, model, val_tokens, base_bytes_lut, has_leading_space_lut, is_boundary_token_lut):
    loss_sum = torch.zeros((), dtype=torch.float64)
    token_count = torch.zeros((), dtype=torch.float64)
    byte_count = torch.zeros((), dtype=torch.float64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.002, momentum=0.9)
    n = val_tokens.numel() - 1
    num_chunks = (n + args.ttt_chunk_tokens - 1) // args.ttt_chunk_tokens
    for ci in range(num_chunks):
        start, end = ci * args.ttt_chunk_tokens, min((ci + 1) * args.ttt_chunk_tokens, n)
        model.eval()
        with torch.inference_mode():
            chunk = val_tokens[start:end + 1].long()
            x, y = chunk[:-1].unsqueeze(0), chunk[1:].unsqueeze(0)
            logits = model(x)
            nll = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="none")
            loss_sum += nll.double().sum()
            token_count += y.numel()
            tgt, prev = y.flatten(), x.flatten()
            tb = base_bytes_lut[tgt].double()
            tb += (has_leading_space_lut[tgt] & ~is_boundary_token_lut[prev]).double()
            byte_count += tb.sum()
        is_last = ci == num_chunks - 1
        if not is_last and args.ttt_epochs > 0:
            model.train()
            for _ep in range(args.ttt_epochs):
                local = val_tokens[start:end + 1].long()
                optimizer.zero_grad()
                loss = model(local[:-1].unsqueeze(0), local[1:].unsqueeze(0))
                loss.backward()
                optimizer.step()
    val_loss = (loss_sum / token_count).item()
    return val_loss, val_loss / math.log(2.0) * (token_count.item() / byte_count.item())


def train(args, model, train_loader, val_tokens, luts):
    opt = torch.optim.AdamW(model.parameters())
    for step in range(100):
        x, y = train_loader.next_batch()
        loss = model(x, y)
        loss.backward()
        opt.step()
        if step % 50 == 0:
            with torch.no_grad():
                check = val_tokens[:4096].long()
                model(check[:-1].unsqueeze(0), check[1:].unsqueeze(0))


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(4, 4)
    val_tokens = torch.load(args.val_files)
    train(args, model, None, val_tokens, None)
    torch.save(model.state_dict(), "final_model.pt")
    if args.ttt_enabled:
        print(eval_val_sliding_ttt(args, model, val_tokens, None, None, None))


if __name__ == "__main__":
    main()
