"""SentencePiece tokenizer loading and the byte tables used to turn token loss into bits per byte.

Byte tables (spec §5): control, unknown and unused ids are boundaries worth 0 bytes; byte-fallback
pieces are worth 1 byte; any other piece is worth the UTF-8 length of its text, with a leading
"▁" stripped and recorded as a leading space (counted only when the previous token is not a
boundary, see `gepa.bpb.target_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gepa.errors import DataError
import sentencepiece as spm

BUNDLED_TOKENIZER = Path(__file__).parent / "assets" / "fineweb_1024_bpe.model"
SPACE_MARK = "\u2581"


def load_tokenizer(path: str | Path) -> Any:
    """Load a SentencePiece model; DataError when missing, misnamed or unreadable."""
    path = Path(path)
    if path.suffix != ".model":
        raise DataError(f"tokenizer path {path} must end in .model (a SentencePiece model)")
    if not path.is_file():
        raise DataError(f"tokenizer file {path} does not exist")
    sp = spm.SentencePieceProcessor()
    try:
        ok = sp.Load(str(path))
    except Exception as e:
        raise DataError(f"tokenizer {path.name} is not a valid SentencePiece model: "
                        f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if ok is False or sp.vocab_size() <= 0:
        raise DataError(f"tokenizer {path.name} is not a valid SentencePiece model")
    return sp


def check_vocab(sp: Any, vocab_size: int) -> None:
    """The reference refuses to run unless the tokenizer and the model agree on vocab size."""
    if sp.vocab_size() != vocab_size:
        raise DataError(f"tokenizer has {sp.vocab_size()} pieces but the config's "
                        f"vocab_size={vocab_size}; use the matching tokenizer or fix vocab_size")


@dataclass(frozen=True)
class ByteLUTs:
    base_bytes: torch.Tensor          # int16 (table,)
    has_leading_space: torch.Tensor   # bool (table,)
    is_boundary: torch.Tensor         # bool (table,)

    def to(self, device: torch.device | str) -> "ByteLUTs":
        return ByteLUTs(self.base_bytes.to(device), self.has_leading_space.to(device),
                        self.is_boundary.to(device))


def build_byte_luts(sp: Any, vocab_size: int) -> ByteLUTs:
    """Tables of size max(sp.vocab_size(), vocab_size); ids past the tokenizer are boundaries."""
    n_sp = sp.vocab_size()
    size = max(n_sp, vocab_size)
    base = [0] * size
    space = [False] * size
    boundary = [True] * size
    for i in range(n_sp):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        boundary[i] = False
        if sp.is_byte(i):
            base[i] = 1
            continue
        piece = sp.id_to_piece(i)
        if piece.startswith(SPACE_MARK):
            space[i] = True
            piece = piece[1:]
        base[i] = len(piece.encode("utf-8"))
    return ByteLUTs(torch.tensor(base, dtype=torch.int16), torch.tensor(space, dtype=torch.bool),
                    torch.tensor(boundary, dtype=torch.bool))
