"""Legal phased TTT: per-document LoRA scored chunk by chunk before each update, plus a global SGD
phase that trains only on documents already scored (called from inside the scoring loop)."""
import os

import torch


class Hyperparameters:
    phased_ttt_num_phases = int(os.environ.get("PHASED_TTT_NUM_PHASES", 3))
    ttt_grad_steps = int(os.environ.get("TTT_GRAD_STEPS", 1))


def _accumulate_bpb(per_tok_loss, y, base_bytes_lut, loss_sum, byte_sum, token_count):
    loss_sum += per_tok_loss.double().sum()
    byte_sum += base_bytes_lut[y].double().sum()
    token_count += y.numel()


def train_val_ttt_global_sgd(h, base_model, val_tokens):
    opt = torch.optim.SGD(base_model.parameters(), lr=1e-3, momentum=0.9)
    for start in range(0, val_tokens.numel() - 2049, 2048):
        local = val_tokens[start:start + 2049].long()
        opt.zero_grad()
        loss = base_model(local[:-1][None], local[1:][None])
        loss.backward()
        opt.step()


def eval_val_ttt_phased(h, base_model, val_data, forward_ttt_train, lora):
    loss_sum = torch.zeros((), dtype=torch.float64)
    byte_sum = torch.zeros((), dtype=torch.float64)
    token_count = torch.zeros((), dtype=torch.float64)
    opt = torch.optim.AdamW(lora.parameters(), lr=1e-3)
    scored_docs = []
    docs = val_data.docs
    for di, (doc_start, doc_len) in enumerate(docs):
        lora.reset()
        num_chunks = (doc_len + 255) // 256
        for ci in range(num_chunks):
            chunk = val_data.val_tokens[doc_start + ci * 256: doc_start + (ci + 1) * 256 + 1].long()
            x, y = chunk[:-1][None], chunk[1:][None]
            per_tok_loss = forward_ttt_train(x, y, lora=lora)
            with torch.no_grad():
                _accumulate_bpb(per_tok_loss, y, val_data.base_bytes_lut, loss_sum, byte_sum, token_count)
            if ci < num_chunks - 1:
                for gi in range(h.ttt_grad_steps):
                    opt.zero_grad()
                    per_tok_loss.mean().backward()
                    opt.step()
        scored_docs.append((doc_start, doc_len))
        if di % 1000 == 999:
            already = torch.cat([val_data.val_tokens[s:s + n] for s, n in scored_docs])
            train_val_ttt_global_sgd(h, base_model, already)
    return (loss_sum / token_count).item()


def main():
    h = Hyperparameters()
    model = torch.nn.Linear(2, 2)
    print(eval_val_ttt_phased(h, model, None, None, None))


if __name__ == "__main__":
    main()
