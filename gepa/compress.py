"""Compressors of the challenge's artifacts, each decoded under a hard output cap.

Formats seen in the records: zstd (one frame, level 22), zlib (level 9), xz (`lzma.compress`),
raw LZMA2 and legacy `.lzma` streams, brotli (quality 11, no magic number of its own), and the
byte shuffle ("BSHF" + stride + planes) that the SP8192 lineage applies before brotli.

Every decoder streams its input and stops with `DecompressionLimitError` as soon as the output
passes the cap, so a bomb costs at most the cap plus one slice of memory. Detection looks at
magic numbers first; brotli and raw LZMA2 have none, so they are tried last (or named by the
caller from the submitter's config).
"""

from __future__ import annotations

import lzma
import zlib
from typing import Callable

import brotli
import zstandard

from gepa.errors import ArtifactFormatError, DecompressionLimitError

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
BSHF_MAGIC = b"BSHF"
# A legacy .lzma header starts with the properties byte; every preset the challenge's writers use
# gives 0x5D (lc=3, lp=0, pb=2).
LZMA_ALONE_PROPS = 0x5D

COMPRESSORS = ("zstd", "zlib", "xz", "lzma-alone", "lzma-raw", "brotli")
_PIECE = 1 << 20
# Tiny input slices bound the output of one decoder call: a zstd RLE block costs a few bytes
# and expands to 128 KiB, so 256 input bytes yield at most ~8 MiB past the cap.
_ZSTD_INPUT_SLICE = 256
_RAW_LZMA2_FILTERS = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 26}]


def too_big(cap: int) -> DecompressionLimitError:
    return DecompressionLimitError(
        f"artifact decompresses to more than {cap:,} bytes (limit); it is not a plausible model")


class _Sink:
    """Collects decoded pieces and enforces the cap (pieces are joined once at the end)."""

    def __init__(self, cap: int):
        self.cap, self.total, self.parts = cap, 0, []

    def add(self, piece: bytes) -> None:
        self.total += len(piece)
        if self.total > self.cap:
            self.parts.clear()
            raise too_big(self.cap)
        self.parts.append(piece)

    def value(self) -> bytes:
        return b"".join(self.parts)


def _zstd(data: bytes, cap: int) -> bytes:
    try:
        params = zstandard.get_frame_parameters(data)
    except zstandard.ZstdError as e:
        raise ArtifactFormatError(f"corrupt zstd frame header: {e}") from None
    if params.content_size not in (0, zstandard.CONTENTSIZE_UNKNOWN) and params.content_size > cap:
        raise too_big(cap)
    dobj = zstandard.ZstdDecompressor(max_window_size=1 << 27).decompressobj()
    sink = _Sink(cap)
    try:
        for i in range(0, len(data), _ZSTD_INPUT_SLICE):
            sink.add(dobj.decompress(data[i:i + _ZSTD_INPUT_SLICE]))
            if dobj.eof:
                if i + _ZSTD_INPUT_SLICE < len(data) or dobj.unused_data:
                    raise ArtifactFormatError("trailing bytes after the zstd frame")
                break
    except zstandard.ZstdError as e:
        raise ArtifactFormatError(f"corrupt zstd stream: {e}") from None
    if not dobj.eof:
        raise ArtifactFormatError("zstd stream ends early (truncated artifact)")
    return sink.value()


def _zlib(data: bytes, cap: int) -> bytes:
    dobj = zlib.decompressobj()
    sink = _Sink(cap)
    try:
        sink.add(dobj.decompress(data, _PIECE))
        # After the end of the stream CPython keeps bytes that follow it in unconsumed_tail (as well
        # as unused_data) and each further call returns nothing: stop at eof, or this never ends.
        while dobj.unconsumed_tail and not dobj.eof:
            sink.add(dobj.decompress(dobj.unconsumed_tail, _PIECE))
    except zlib.error as e:
        raise ArtifactFormatError(f"corrupt zlib stream: {e}") from None
    if not dobj.eof:
        raise ArtifactFormatError("zlib stream ends early (truncated artifact)")
    if dobj.unused_data:
        raise ArtifactFormatError("trailing bytes after the zlib stream")
    return sink.value()


def _lzma(fmt: int, filters: list | None, label: str) -> Callable[[bytes, int], bytes]:
    def decode(data: bytes, cap: int) -> bytes:
        dobj = lzma.LZMADecompressor(format=fmt, filters=filters)
        sink = _Sink(cap)
        try:
            sink.add(dobj.decompress(data, _PIECE))
            while not dobj.eof and not dobj.needs_input:
                sink.add(dobj.decompress(b"", _PIECE))
        except lzma.LZMAError as e:
            raise ArtifactFormatError(f"corrupt {label} stream: {e}") from None
        if not dobj.eof:
            raise ArtifactFormatError(f"{label} stream ends early (truncated artifact)")
        if dobj.unused_data:
            raise ArtifactFormatError(f"trailing bytes after the {label} stream")
        return sink.value()

    return decode


def _brotli(data: bytes, cap: int) -> bytes:
    dobj = brotli.Decompressor()
    sink = _Sink(cap)
    try:
        piece = dobj.process(data, output_buffer_limit=_PIECE)
        # The decoder keeps unread input and yields at most about one limit of output per call;
        # an empty piece before the end means the input ran out (a truncated stream).
        while piece:
            sink.add(piece)
            if dobj.is_finished():
                break
            piece = dobj.process(b"", output_buffer_limit=_PIECE)
    except brotli.error as e:
        raise ArtifactFormatError(f"corrupt brotli stream: {e}") from None
    if not dobj.is_finished():
        raise ArtifactFormatError("brotli stream ends early (truncated artifact)")
    return sink.value()


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "zstd": _zstd,
    "zlib": _zlib,
    "xz": _lzma(lzma.FORMAT_XZ, None, "xz"),
    "lzma-alone": _lzma(lzma.FORMAT_ALONE, None, "lzma"),
    "lzma-raw": _lzma(lzma.FORMAT_RAW, _RAW_LZMA2_FILTERS, "raw LZMA2"),
    "brotli": _brotli,
}


def sniff(data: bytes) -> str | None:
    """The compressor a magic number names, or None (brotli and raw LZMA2 carry none)."""
    if data[:4] == ZSTD_MAGIC:
        return "zstd"
    if data[:6] == XZ_MAGIC:
        return "xz"
    if len(data) >= 2 and data[0] == 0x78 and (data[0] * 256 + data[1]) % 31 == 0:
        return "zlib"
    if len(data) >= 13 and data[0] == LZMA_ALONE_PROPS and data[5:13] == b"\xff" * 8:
        return "lzma-alone"  # Python's writer records the size as unknown
    return None


def decompress(data: bytes, cap: int, compressor: str | None = None) -> tuple[bytes, str]:
    """Decode `data` with `compressor`, or with the one its magic names, or by trying brotli and
    then raw LZMA2. Returns (raw bytes, compressor used)."""
    if compressor is not None:
        if compressor not in _DECODERS:
            raise ArtifactFormatError(f"unknown compressor {compressor!r}; use one of {', '.join(COMPRESSORS)}")
        return _DECODERS[compressor](data, cap), compressor
    named = sniff(data)
    if named is not None:
        return _DECODERS[named](data, cap), named
    errors = []
    for name in ("brotli", "lzma-raw"):
        try:
            return _DECODERS[name](data, cap), name
        except DecompressionLimitError:
            raise
        except ArtifactFormatError as e:
            errors.append(str(e))
    head = data[:4].hex(" ") if data else "empty file"
    raise ArtifactFormatError(
        f"not a compressed artifact this verifier knows (first bytes: {head}; no zstd, zlib, xz or lzma header, "
        f"and as brotli: {errors[0]}; as raw LZMA2: {errors[1]}); write the torch.save output with one of "
        f"{', '.join(COMPRESSORS)}")


def compress(raw: bytes, compressor: str) -> bytes:
    """The writers the records use (for artifacts made by tests, demos and benchmarks)."""
    if compressor == "zstd":
        return zstandard.ZstdCompressor(level=22).compress(raw)
    if compressor == "zlib":
        return zlib.compress(raw, 9)
    if compressor == "xz":
        return lzma.compress(raw, preset=6)
    if compressor == "lzma-alone":
        return lzma.compress(raw, format=lzma.FORMAT_ALONE, preset=6)
    if compressor == "lzma-raw":
        return lzma.compress(raw, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 6}])
    if compressor == "brotli":
        return brotli.compress(raw, quality=11)
    raise ValueError(f"unknown compressor {compressor!r}; use one of {', '.join(COMPRESSORS)}")


# ----------------------------------------------------------------------------- byte shuffle

def byte_shuffle(data: bytes, stride: int = 2) -> bytes:
    """`BSHF` + stride + the stride byte planes one after another (skipped for tiny inputs)."""
    if stride <= 1 or len(data) < stride:
        return data
    return BSHF_MAGIC + bytes([stride]) + b"".join(data[j::stride] for j in range(stride))


def byte_unshuffle(data: bytes) -> tuple[bytes, bool]:
    """Undo `byte_shuffle`; data without the magic is returned as is. Returns (bytes, was_shuffled)."""
    if data[:4] != BSHF_MAGIC:
        return data, False
    if len(data) < 5:
        raise ArtifactFormatError("byte-shuffled artifact ends inside its 5-byte header")
    stride, payload = data[4], data[5:]
    if stride < 2:
        return payload, True
    n = len(payload)
    out = bytearray(n)
    pos = 0
    for j in range(stride):
        size = n // stride + (1 if j < n % stride else 0)
        out[j::stride] = payload[pos:pos + size]
        pos += size
    return bytes(out), True
