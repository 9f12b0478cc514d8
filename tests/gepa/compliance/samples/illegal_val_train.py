"""Illegal: the training loader reads the validation shards, and GPTQ is calibrated on val tokens."""
import os

import torch


class Hyperparameters:
    data_path = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
    train_files = os.path.join(data_path, "fineweb_val_*.bin")
    val_files = os.path.join(data_path, "fineweb_val_*.bin")


def collect_hessians(model, tokens, n=64):
    hs = {}
    with torch.no_grad():
        for i in range(n):
            model(tokens[i * 2048:(i + 1) * 2048][None])
    return hs


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(2, 2)
    val_tokens = torch.load(args.val_files)
    hessians = collect_hessians(model, val_tokens)
    return hessians


if __name__ == "__main__":
    main()
