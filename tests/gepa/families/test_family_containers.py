"""The GEPA and baseline families read their container whichever compressor wrapped it: the March
records wrote the same `__quant_format__` dict with zstd, zlib, xz/lzma and brotli (byte-shuffled
or not). Each fixture artifact is re-encoded here from its own decompressed bytes; detection must
pick the same family and the scores must be identical to the original file's."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import brotli
import pytest

from gepa import codec, compress, runner
from tests.support.paths import DATA

CASES = {
    "gepa": (DATA / "reference_small", "final_model.int6.ptz", "eval_sliding.json"),
    "baseline": (DATA / "baseline_small", "final_model.int8.ptz", "eval_sliding.json"),
}
WRAPPERS = [("xz", False), ("lzma-alone", False), ("lzma-raw", False), ("brotli", False), ("brotli", True),
            ("zstd", False), ("zlib", False), ("zstd", True)]
MAX_TOKENS = 2048


def _encode(raw: bytes, compressor: str) -> bytes:
    """The records' stream formats, at fast settings (the decoder does not care about the level)."""
    fast = {
        "xz": lambda b: lzma.compress(b, preset=1),
        "lzma-alone": lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE, preset=1),
        "lzma-raw": lambda b: lzma.compress(b, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 1}]),
        "brotli": lambda b: brotli.compress(b, quality=4),
    }
    return fast[compressor](raw) if compressor in fast else compress.compress(raw, compressor)


def _raw(path: Path) -> bytes:
    data = path.read_bytes()
    raw, _ = compress.decompress(data, codec.DEFAULT_MAX_DECOMPRESSED)
    return raw


@pytest.fixture(scope="module")
def originals():
    out = {}
    for family, (folder, art, cfg) in CASES.items():
        raw_cfg = json.loads((folder / cfg).read_text())
        out[family] = runner.run_evaluation(folder / art, raw_cfg, val_glob=str(folder / "fineweb_val_*.bin"),
                                            max_tokens=MAX_TOKENS)
    return out


@pytest.mark.parametrize("family", sorted(CASES))
@pytest.mark.parametrize("compressor,shuffle", WRAPPERS)
def test_re_encoded_container_scores_identically(family, compressor, shuffle, originals, tmp_path):
    folder, art, cfg = CASES[family]
    raw = _raw(folder / art)
    blob = _encode(compress.byte_shuffle(raw) if shuffle else raw, compressor)
    path = tmp_path / art  # same file name, other bytes: the name must not matter
    path.write_bytes(blob)
    decoded = codec.read_artifact(path)
    assert decoded.compression == compressor + ("+bshf" if shuffle else "")
    raw_cfg = json.loads((folder / cfg).read_text())
    raw_cfg.pop("family", None)  # detected from the content
    prep = runner.prepare(path, raw_cfg)
    assert prep.family.name == family
    got = runner.run_prepared(prep, val_glob=str(folder / "fineweb_val_*.bin"), max_tokens=MAX_TOKENS)
    want = originals[family]
    assert (got.val_bpb, got.val_loss, got.tokens_scored) == (want.val_bpb, want.val_loss, want.tokens_scored)
