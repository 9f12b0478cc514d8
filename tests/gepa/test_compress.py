"""Every compressor of the challenge's artifacts: round trips, detection, caps and damaged streams."""

from __future__ import annotations

import os
import tracemalloc

import brotli
import pytest

from gepa import compress
from gepa.errors import ArtifactFormatError, DecompressionLimitError

RAW = os.urandom(2000) + b"golfcheck " * 300_000


@pytest.mark.parametrize("name", compress.COMPRESSORS)
def test_round_trip_and_detection(name):
    blob = compress.compress(RAW, name)
    assert compress.decompress(blob, 10 << 20) == (RAW, name)
    assert compress.decompress(blob, 10 << 20, name) == (RAW, name)


@pytest.mark.parametrize("name", compress.COMPRESSORS)
def test_cap_and_truncation(name):
    blob = compress.compress(RAW, name)
    with pytest.raises(DecompressionLimitError):
        compress.decompress(blob, 1 << 20)
    with pytest.raises(ArtifactFormatError) as ei:
        compress.decompress(blob[: len(blob) // 2], 10 << 20)
    assert "\n" not in str(ei.value)


def test_brotli_bomb_is_stopped_with_bounded_memory():
    bomb = brotli.compress(bytes(1 << 30), quality=5)
    assert len(bomb) < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DecompressionLimitError):
            compress.decompress(bomb, 32 << 20)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < (32 << 20) + (64 << 20)


def test_xz_bomb_is_stopped():
    bomb = compress.compress(bytes(256 << 20), "xz")
    with pytest.raises(DecompressionLimitError):
        compress.decompress(bomb, 16 << 20)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 1001])
def test_byte_shuffle_round_trip(n):
    data = os.urandom(n)
    shuffled = compress.byte_shuffle(data)
    assert compress.byte_unshuffle(shuffled) == (data, n >= 2)
    if n >= 2:
        assert shuffled[:5] == b"BSHF\x02" and shuffled[5:5 + (n + 1) // 2] == data[0::2]


def test_unshuffle_of_a_damaged_header():
    with pytest.raises(ArtifactFormatError):
        compress.byte_unshuffle(b"BSHF")


def test_unknown_compressor_is_named():
    with pytest.raises(ArtifactFormatError, match="unknown compressor 'rar'"):
        compress.decompress(b"xx", 100, "rar")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["zstd", "zlib", "xz", "lzma-alone"])
def test_trailing_bytes_after_a_multi_piece_stream_end(name):
    # Output larger than one decoder piece (1 MiB): CPython's zlib keeps trailing input in
    # unconsumed_tail after eof, which once made the zlib loop spin forever.
    payload = os.urandom(1 << 19) * 6
    blob = compress.compress(payload, name) + b"\x00junk"
    with pytest.raises(ArtifactFormatError, match="trailing"):
        compress.decompress(blob, 64 << 20, name)
