"""Small artifacts for demos and tests: random init or a few AdamW steps on real text, then the
reference quantizer and container. Not the reference training recipe (no Muon, no EMA)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gepa import codec
from gepa.errors import InputError
from gepa.families.gepa.config import EvalConfig
from gepa.families.gepa.model import GPT
from gepa.families.gepa.quantize import quantize_state_dict
from gepa.shards import BUNDLED_SAMPLE_JSONL, tokenize_documents
from gepa.tokenizer import BUNDLED_TOKENIZER, load_tokenizer


def _training_tokens(data: str | Path | None, vocab_size: int) -> torch.Tensor:
    path = Path(data) if data else BUNDLED_SAMPLE_JSONL
    texts = []
    try:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    doc = json.loads(line)
                    if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
                        raise InputError(f"{path}:{n}: each line must be a JSON object with a string field \"text\"")
                    texts.append(doc["text"])
    except OSError as exc:
        raise InputError(f"cannot read training data {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"training data {path} is not JSONL text: {exc}") from None
    sp = load_tokenizer(BUNDLED_TOKENIZER)
    ids = tokenize_documents(texts, sp)
    if vocab_size < sp.vocab_size():
        ids = np.minimum(ids, vocab_size - 1)
    return torch.from_numpy(ids.astype(np.int64))


def train_steps(model: GPT, tokens: torch.Tensor, steps: int, seq_len: int, lr: float, batch: int = 8,
                seed: int = 0, log: Callable[[str], None] | None = None) -> None:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    model.train()
    span = tokens.numel() - seq_len - 1
    if span <= 0:
        raise InputError(f"training data has {tokens.numel()} tokens; need more than seq_len={seq_len}")
    for step in range(steps):
        starts = torch.randint(0, span, (batch,), generator=gen)
        idx = starts[:, None] + torch.arange(seq_len + 1)[None, :]
        chunk = tokens[idx]
        loss = model(chunk[:, :-1], chunk[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if log and (step % 10 == 0 or step == steps - 1):
            log(f"step {step + 1}/{steps} loss {loss.item():.4f}")
    model.eval()


def make_artifact(out: str | Path, cfg: EvalConfig, *, steps: int = 0, data: str | Path | None = None,
                  seed: int = 0, lr: float = 3e-3, compression: str = "zstd",
                  log: Callable[[str], None] | None = None) -> int:
    torch.manual_seed(seed)
    model = GPT(cfg.model)
    if steps:
        tokens = _training_tokens(data, cfg.model.vocab_size)
        train_steps(model, tokens, steps, min(cfg.eval.seq_len, 512), lr, seed=seed, log=log)
    model.reference_dtypes()  # tok_emb in bf16 before quantisation, as in the real run
    obj = quantize_state_dict(model.state_dict(), mixed=True, quant_embed=True)
    return codec.write_artifact(out, obj, compression=compression)
