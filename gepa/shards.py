"""Token shards in the challenge's format (spec §5) and validation-token loading.

A shard is a 1,024-byte header of 256 little-endian int32 (magic 20240520, version 1, token
count, zeros) followed by that many little-endian uint16 token ids. Documents are tokenized
with BOS (id 1) before each and no EOS, and concatenated.

`python -m gepa.shards build-sample JSONL TOKENIZER OUT` rebuilds the bundled sample shard.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from gepa.errors import DataError

if TYPE_CHECKING:  # torch is imported where tensors are made; this module is torch-free for the API
    import torch

MAGIC = 20240520
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
BOS_ID = 1

ASSETS_DIR = Path(__file__).parent / "assets"
BUNDLED_VAL_GLOB = str(ASSETS_DIR / "fineweb_val_*.bin")
BUNDLED_SAMPLE_JSONL = ASSETS_DIR / "fineweb_val_sample_200docs.jsonl"


def _check_header(path: Path, f, size: int) -> int:
    head = f.read(HEADER_BYTES)
    if len(head) != HEADER_BYTES:
        raise DataError(f"shard {path.name} is {size} bytes, shorter than the "
                        f"{HEADER_BYTES}-byte header; --val must name token shards (fineweb_val_*.bin)")
    header = np.frombuffer(head, dtype="<i4")
    if int(header[0]) != MAGIC:
        raise DataError(f"shard {path.name} has magic {int(header[0])}, expected {MAGIC}; "
                        "not a challenge token shard")
    if int(header[1]) != VERSION:
        raise DataError(f"shard {path.name} has version {int(header[1])}, expected {VERSION}")
    n = int(header[2])
    if n < 0 or size != HEADER_BYTES + 2 * n:
        raise DataError(f"shard {path.name} is {size} bytes but its header says {n} tokens "
                        f"({HEADER_BYTES + 2 * n} bytes); the file is truncated or padded")
    return n


def shard_token_count(path: str | Path) -> int:
    """Tokens in a shard, from its (checked) header alone."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _check_header(path, f, path.stat().st_size)
    except OSError as e:
        raise DataError(f"cannot read shard {path}: {e.strerror or e}") from None


def read_shard(path: str | Path) -> np.ndarray:
    """Return the shard's tokens as a uint16 array, after checking header and size."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            n = _check_header(path, f, size)
            tokens = np.frombuffer(f.read(2 * n), dtype="<u2")
    except OSError as e:
        raise DataError(f"cannot read shard {path}: {e.strerror or e}") from None
    if tokens.size != n:
        raise DataError(f"shard {path.name} changed while being read")
    return tokens.astype(np.uint16, copy=False)


def write_shard(path: str | Path, tokens: Iterable[int] | np.ndarray) -> None:
    """Write a shard atomically (temp file, then rename)."""
    arr = np.asarray(tokens)
    if arr.size and (arr.min() < 0 or arr.max() > 65535):
        raise ValueError("token ids must fit in uint16")
    body = arr.astype("<u2", copy=False).tobytes()
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:3] = (MAGIC, VERSION, arr.size)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; published files should be world-readable
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header.tobytes())
            f.write(body)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def shard_paths(pattern: str, *, sidecars: bool = False) -> list[Path]:
    """The shards a glob names, sorted (the references' order); DataError when there are none.

    A CaseOps per-token byte sidecar (`fineweb_val_bytes_*.bin`) has the shard format and sits
    next to the token shards, so `fineweb_val_*.bin` matches it too; like the reference's loader,
    token reads and counts skip names containing `_bytes_` (`sidecars=True` asks for them)."""
    files = sorted(f for f in glob.glob(str(pattern)) if sidecars or "_bytes_" not in Path(f).name)
    if not files:
        raise DataError(f"no validation shards match {pattern}")
    return [Path(f) for f in files]


def fingerprint(paths: Iterable[str | Path]) -> str:
    """sha256 over the shard files' bytes in order: identifies the validation set a run used."""
    h = hashlib.sha256()
    for p in paths:
        try:
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        except OSError as e:
            raise DataError(f"cannot read shard {p}: {e.strerror or e}") from None
    return h.hexdigest()


def read_tokens(paths: Iterable[str | Path]) -> np.ndarray:
    """Every token of the shards, concatenated (uint16)."""
    arrays = [read_shard(p) for p in paths]
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint16)


def load_validation_tokens(pattern: str, seq_len: int) -> "torch.Tensor":
    """Sorted shards concatenated and cut to floor((N-1)/seq_len)*seq_len + 1 tokens.

    Returned as int64 for simple indexing: 8 bytes per token (the full 62M-token val set is
    ~0.5 GB; the reference keeps uint16, 4x smaller).
    """
    files = [str(p) for p in shard_paths(pattern)]
    tokens = np.concatenate([read_shard(f) for f in files])
    if seq_len <= 0:
        raise DataError(f"seq_len must be positive, got {seq_len}")
    usable = ((tokens.size - 1) // seq_len) * seq_len
    if usable <= 0:
        raise DataError(f"validation data has {tokens.size} tokens, too few for one sequence of "
                        f"{seq_len} (need at least {seq_len + 1})")
    import torch  # here, so that counting targets from headers never loads torch

    return torch.from_numpy(tokens[: usable + 1].astype(np.int64))


def tokenize_documents(texts: Iterable[str], sp: Any) -> np.ndarray:
    """BOS before every document, no EOS, concatenated as uint16."""
    out: list[int] = []
    for text in texts:
        out.append(BOS_ID)
        out.extend(sp.encode(text))
    return np.asarray(out, dtype=np.uint16)


def build_sample_shard(jsonl: str | Path, tokenizer: str | Path, out: str | Path) -> int:
    """Tokenize every {"text": ...} line of `jsonl` into one shard; returns the token count."""
    from gepa.tokenizer import load_tokenizer  # here: gepa.tokenizer loads torch, this module must not

    sp = load_tokenizer(tokenizer)
    with open(jsonl, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    tokens = tokenize_documents(texts, sp)
    write_shard(out, tokens)
    return int(tokens.size)


def _main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] != "build-sample":
        print("usage: python -m gepa.shards build-sample JSONL TOKENIZER OUT", file=sys.stderr)
        return 2
    n = build_sample_shard(*argv[1:])
    print(f"wrote {argv[3]}: {n} tokens")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))


def count_tokens(pattern: str) -> int:
    """Tokens in the shards a glob names, from their headers alone."""
    return sum(shard_token_count(p) for p in shard_paths(pattern))


def count_targets(pattern: str, seq_len: int, max_tokens: int | None = None) -> int:
    """Targets an evaluation will see after the reference's truncation, from shard headers alone."""
    n = sum(shard_token_count(f) for f in sorted(glob.glob(pattern)) if "_bytes_" not in Path(f).name)
    total = ((n - 1) // seq_len) * seq_len if n > 1 else 0
    if max_tokens is not None and max_tokens < total:
        total = (max_tokens // seq_len) * seq_len
    return total
