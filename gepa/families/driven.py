"""A `Family` whose modes all run through `gepa.evaluate`'s shared drivers.

The GPT families built on sentencepiece shards (gepa, sp8192, march11l) differ in their config,
container and model, but score the same way: the validation stream is cut to whole sequences, the
family's `specs(cfg)` names the standard/sliding/TTT drivers' settings, and the FLOP model sees the
targets left after that cut. `DrivenFamily` holds that shared part once; a family supplies `specs`
and `target_flops`.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gepa.evaluate import SlidingSpec, StandardSpec, count_chunks, device_of, evaluate_model, truncate
from gepa.families.base import ChunkCallback, Family, StopCheck
from gepa.results import EvalResult
from gepa.valdata import ValData, sentencepiece_data


def window_specs(e: Any, t: Any) -> dict[str, Any]:
    """The standard and sliding drivers' settings of the gepa and march11l configs (same fields):
    standard chunks of whole sequences, sliding windows that keep the first window's prefix scored
    when the run adapts (TTT)."""
    return {
        "standard": StandardSpec(seq_len=e.seq_len, batch_seqs=e.batch_seqs,
                                 chunk_seqs=max(1, t.chunk_tokens // e.seq_len)),
        "sliding": SlidingSpec(seq_len=e.seq_len, stride=e.stride, batch_seqs=e.batch_seqs, chunk_tokens=t.chunk_tokens,
                               tail=e.tail, keep_first=e.mode == "ttt"),
    }


def targets(total_tokens: int, seq_len: int, max_tokens: int | None) -> int:
    """Targets after the references' truncation (and an optional demo cut), without torch."""
    n = total_tokens if max_tokens is None else min(total_tokens, max_tokens + 1)
    return ((n - 1) // seq_len) * seq_len if n > 1 else 0


class DrivenFamily(Family):
    """Data, evaluation, chunk count and FLOPs for a family scored by the shared drivers."""

    @abstractmethod
    def specs(self, cfg: Any) -> dict[str, Any]:
        """The drivers' settings for `cfg`: `standard`, `sliding` and, in TTT mode, `ttt`."""

    @abstractmethod
    def target_flops(self, cfg: Any, total_targets: int) -> float:
        """Approximate FLOPs of an evaluation of `total_targets` targets (after the cut)."""

    def load_data(self, cfg: Any, val_glob: str, tokenizer: str | Path, *,
                  sidecar_glob: str | None = None) -> ValData:
        return sentencepiece_data(val_glob, tokenizer, cfg.model.vocab_size)

    def evaluate(self, model: nn.Module, data: ValData, cfg: Any, *, device: torch.device,
                 impl: str = "fast", on_chunk: ChunkCallback | None = None, should_stop: StopCheck | None = None,
                 max_tokens: int | None = None, collect_token_losses: bool = False) -> EvalResult:
        keep = truncate(data.tokens, cfg.eval.seq_len, max_tokens).numel()
        return evaluate_model(model, data.tokens[:keep], data.target_bytes[:keep], mode=cfg.mode, **self.specs(cfg),
                              device=device_of(device), impl=impl, on_chunk=on_chunk, should_stop=should_stop,
                              collect_token_losses=collect_token_losses)

    def chunk_count(self, cfg: Any, total_tokens: int, max_tokens: int | None = None) -> int:
        total = targets(total_tokens, cfg.eval.seq_len, max_tokens)
        s = self.specs(cfg)
        return count_chunks(cfg.mode, total, standard=s["standard"], sliding=s["sliding"])

    def flops(self, cfg: Any, total_tokens: int) -> float:
        return self.target_flops(cfg, targets(total_tokens, cfg.eval.seq_len, None))
