"""Shard format, validation-token loading and the bundled sample shard."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gepa import shards
from gepa.errors import DataError
from gepa.tokenizer import BUNDLED_TOKENIZER, load_tokenizer
from tests.support.paths import DATA


def test_round_trip_and_header(tmp_path):
    toks = np.array([1, 5, 65535, 0, 1023], dtype=np.uint16)
    p = tmp_path / "fineweb_val_000000.bin"
    shards.write_shard(p, toks)
    raw = p.read_bytes()
    assert len(raw) == 1024 + 10
    header = np.frombuffer(raw[:1024], dtype="<i4")
    assert header[:3].tolist() == [20240520, 1, 5] and not header[3:].any()
    got = shards.read_shard(p)
    assert got.dtype == np.uint16 and got.tolist() == toks.tolist()
    assert not list(tmp_path.glob(".*tmp"))


def _corrupt(tmp_path, name, header_fix=None, body=b"\x01\x00" * 4):
    header = np.zeros(256, dtype="<i4")
    header[:3] = (20240520, 1, 4)
    if header_fix:
        header_fix(header)
    p = tmp_path / name
    p.write_bytes(header.tobytes() + body)
    return p


def test_bad_shards_raise_data_error_naming_the_file(tmp_path):
    cases = {
        "magic.bin": (lambda h: h.__setitem__(0, 1234), b"\x01\x00" * 4, "magic 1234"),
        "version.bin": (lambda h: h.__setitem__(1, 2), b"\x01\x00" * 4, "version 2"),
        "short.bin": (None, b"\x01\x00" * 3, "header says 4 tokens"),
        "long.bin": (None, b"\x01\x00" * 5, "header says 4 tokens"),
        "negative.bin": (lambda h: h.__setitem__(2, -1), b"", "-1 tokens"),
    }
    for name, (fix, body, needle) in cases.items():
        with pytest.raises(DataError) as ei:
            shards.read_shard(_corrupt(tmp_path, name, fix, body))
        assert name in str(ei.value) and needle in str(ei.value) and "\n" not in str(ei.value)
    tiny = tmp_path / "tiny.bin"
    tiny.write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="shorter than the 1024-byte header"):
        shards.read_shard(tiny)
    with pytest.raises(DataError, match="cannot read shard"):
        shards.read_shard(tmp_path / "missing.bin")


def test_load_validation_tokens_sorts_concatenates_and_truncates(tmp_path):
    shards.write_shard(tmp_path / "fineweb_val_000001.bin", np.arange(10, 20))
    shards.write_shard(tmp_path / "fineweb_val_000000.bin", np.arange(0, 10))
    t = shards.load_validation_tokens(str(tmp_path / "fineweb_val_*.bin"), seq_len=6)
    assert t.dtype == torch.int64
    assert t.tolist() == list(range(19))  # floor((20-1)/6)*6 + 1
    with pytest.raises(DataError, match="too few"):
        shards.load_validation_tokens(str(tmp_path / "fineweb_val_*.bin"), seq_len=20)
    with pytest.raises(DataError, match="no validation shards match"):
        shards.load_validation_tokens(str(tmp_path / "nothing_*.bin"), seq_len=4)


def test_reference_fixture_shard():

    ref = DATA / "reference_small"
    expected = json.loads((ref / "expected.json").read_text())
    t = shards.load_validation_tokens(str(ref / "fineweb_val_*.bin"), seq_len=256)
    assert t.numel() == expected["val_tokens_after_truncation"] == 47105
    assert int(t[0]) == 1


def test_tokenize_documents_puts_bos_before_each_doc():
    sp = load_tokenizer(BUNDLED_TOKENIZER)
    toks = shards.tokenize_documents(["Hello world.", "Second doc"], sp)
    assert toks.dtype == np.uint16
    first = sp.encode("Hello world.")
    assert toks.tolist() == [1] + first + [1] + sp.encode("Second doc")
    assert 2 not in toks.tolist()  # no EOS


def test_bundled_sample_shard_is_the_tokenized_jsonl(tmp_path):
    out = tmp_path / "fineweb_val_000000.bin"
    n = shards.build_sample_shard(shards.BUNDLED_SAMPLE_JSONL, BUNDLED_TOKENIZER, out)
    bundled = sorted(shards.ASSETS_DIR.glob("fineweb_val_*.bin"))
    assert [p.name for p in bundled] == ["fineweb_val_000000.bin"]
    assert out.read_bytes() == bundled[0].read_bytes()
    tokens = shards.read_shard(bundled[0])
    assert tokens.size == n and int((tokens == 1).sum()) == 200
    t = shards.load_validation_tokens(shards.BUNDLED_VAL_GLOB, 2048)
    assert (t.numel() - 1) % 2048 == 0
