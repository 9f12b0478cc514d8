"""Builders of hostile artifacts shared by the codec tests (tests/gepa) and the service's hostile
corpus (tests/hardening): a torch archive with a swapped pickle, decompression bombs, and the
checks every refusal must pass (one line, bounded memory)."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
import zlib
from typing import Callable

import torch
import zstandard


def one_line(exc: BaseException) -> str:
    """The message of a refusal, asserted to be one short line."""
    msg = str(exc)
    assert msg and "\n" not in msg and len(msg) < 400
    return msg


def torch_zip_with_pickle(pkl: bytes) -> bytes:
    """A genuine torch.save archive whose data.pkl has been swapped for `pkl`."""
    buf = io.BytesIO()
    torch.save({"x": torch.zeros(2)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, pkl if info.filename.endswith("/data.pkl") else src.read(info))
    return out.getvalue()


def zstd_bomb(total: int) -> bytes:
    """`total` zero bytes through a streaming compressor: no content size in the frame header."""
    cobj = zstandard.ZstdCompressor(level=3).compressobj()
    piece = bytes(16 << 20)
    parts = [cobj.compress(piece) for _ in range(total // len(piece))]
    return b"".join(parts) + cobj.flush()


def zlib_bomb(total: int) -> bytes:
    cobj = zlib.compressobj(9)
    piece = bytes(16 << 20)
    parts = [cobj.compress(piece) for _ in range(total // len(piece))]
    return b"".join(parts) + cobj.flush()


def peak_during(fn: Callable[[], object]) -> int:
    """Peak traced Python memory (bytes) while `fn` runs."""
    tracemalloc.start()
    try:
        fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak
