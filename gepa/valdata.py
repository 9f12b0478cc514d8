"""The validation stream a family scores, with its per-position byte counts and provenance.

Families whose bytes follow the sentencepiece rule (base bytes of the piece, plus its leading
space unless the previous token is a boundary) build it with `sentencepiece_data`; a family with
its own byte accounting fills `target_bytes` itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gepa import shards
from gepa.bpb import position_bytes
from gepa.errors import DataError
from gepa.tokenizer import build_byte_luts, check_vocab, load_tokenizer


@dataclass
class ValData:
    """tokens: the whole stream of the shards (int64), before any truncation a procedure applies.
    target_bytes: int32, same length; bytes credited when token i is scored as a target.
    shard_paths / sha256: what was read (the sha256 fingerprint of the shard files in order).
    extra: family-specific side data (e.g. a submitted byte sidecar, kept for comparison)."""

    tokens: Tensor
    target_bytes: Tensor
    shard_paths: list[Path] = field(default_factory=list)
    sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return int(self.tokens.numel())


def read_stream(val_glob: str, vocab_size: int) -> tuple[Tensor, list[Path], str]:
    """(int64 tokens, shard paths, fingerprint); token ids must fit the model's vocabulary."""
    paths = shards.shard_paths(val_glob)
    arr = shards.read_tokens(paths)
    if arr.size < 2:
        raise DataError(f"validation shards matching {val_glob} hold {arr.size} token(s); need at least 2")
    top = int(arr.max())
    if top >= vocab_size:
        raise DataError(f"validation shards hold token id {top}, outside model.vocab_size={vocab_size}; "
                        "use the shards made with this model's tokenizer")
    return torch.from_numpy(arr.astype("int64")), paths, shards.fingerprint(paths)


def sentencepiece_data(val_glob: str, tokenizer: str | Path, vocab_size: int, *, strict_vocab: bool = False) -> ValData:
    """The stream and its byte counts under the sentencepiece rule."""
    sp = load_tokenizer(tokenizer)
    if strict_vocab:
        check_vocab(sp, vocab_size)
    tokens, paths, digest = read_stream(val_glob, vocab_size)
    luts = build_byte_luts(sp, vocab_size)
    return ValData(tokens=tokens, target_bytes=position_bytes(tokens, luts), shard_paths=paths, sha256=digest)
