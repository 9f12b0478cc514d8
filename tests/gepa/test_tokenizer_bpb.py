"""Byte tables of the real tokenizer and the float64 bits-per-byte arithmetic."""

from __future__ import annotations

import json
import math

import pytest
import torch

from gepa import bpb, tokenizer
from gepa.errors import DataError
from gepa.shards import BUNDLED_SAMPLE_JSONL
from tests.support.paths import SHARED

SHARED_MODEL = SHARED / "data" / "fineweb_1024_bpe.model"


@pytest.fixture(scope="module")
def sp():
    return tokenizer.load_tokenizer(tokenizer.BUNDLED_TOKENIZER)


@pytest.fixture(scope="module")
def luts(sp):
    return tokenizer.build_byte_luts(sp, 1024)


def doc_bytes(sp, luts, text: str) -> int:
    ids = torch.tensor([1] + sp.encode(text))
    return int(bpb.target_bytes(ids[:-1], ids[1:], luts).sum())


def test_bundled_tokenizer_is_the_challenge_one(sp):
    assert sp.vocab_size() == 1024
    assert [sp.id_to_piece(i) for i in range(4)] == ["<pad>", "<s>", "</s>", "<unk>"]
    if SHARED_MODEL.exists():
        assert tokenizer.BUNDLED_TOKENIZER.read_bytes() == SHARED_MODEL.read_bytes()


def test_hand_checked_pieces(sp, luts):
    assert luts.base_bytes.dtype == torch.int16 and luts.base_bytes.shape == (1024,)
    for i in range(4):  # pad, bos, eos, unk: boundaries worth nothing
        assert (int(luts.base_bytes[i]), bool(luts.has_leading_space[i]), bool(luts.is_boundary[i])) == (0, False, True)
    byte_a = sp.piece_to_id("<0x41>")
    assert (int(luts.base_bytes[byte_a]), bool(luts.has_leading_space[byte_a])) == (1, False)
    the = sp.piece_to_id("\u2581the")
    assert (int(luts.base_bytes[the]), bool(luts.has_leading_space[the]), bool(luts.is_boundary[the])) == (3, True, False)
    ell = sp.piece_to_id("ell")
    assert (int(luts.base_bytes[ell]), bool(luts.has_leading_space[ell])) == (3, False)
    assert int(luts.is_boundary.sum()) == 4
    assert int((luts.base_bytes == 1).sum()) >= 256  # byte fallback pieces at least


@pytest.mark.parametrize("text", ["Hello world, this is a test.", "Crème brûlée costs 5€ — 😀!",
                                  "Numbers 12345 and tabs\tand\nnewlines."])
def test_sentence_bytes_equal_utf8_length(sp, luts, text):
    assert doc_bytes(sp, luts, text) == len(text.encode("utf-8"))


def test_every_sample_doc_counts_its_normalized_utf8_bytes(sp, luts):
    texts = [json.loads(line)["text"] for line in BUNDLED_SAMPLE_JSONL.read_text(encoding="utf-8").splitlines()]
    assert len(texts) == 200
    for text in texts:
        ids = sp.encode(text)
        # nmt_nfkc normalisation may change the text; the tables count what the tokens spell.
        assert doc_bytes(sp, luts, text) == len(sp.decode(ids).encode("utf-8"))


def test_leading_space_after_boundary_is_not_counted(sp, luts):
    the = sp.piece_to_id("\u2581the")
    a = sp.piece_to_id("a") if sp.piece_to_id("a") != 3 else sp.piece_to_id("<0x61>")
    prev = torch.tensor([1, a])
    tgt = torch.tensor([the, the])
    assert bpb.target_bytes(prev, tgt, luts).tolist() == [3, 4]


def test_table_is_padded_to_config_vocab(sp):
    luts = tokenizer.build_byte_luts(sp, 1100)
    assert luts.base_bytes.shape == (1100,)
    assert bool(luts.is_boundary[1024:].all()) and int(luts.base_bytes[1024:].sum()) == 0


def test_vocab_mismatch_and_bad_files(sp, tmp_path):
    tokenizer.check_vocab(sp, 1024)
    with pytest.raises(DataError, match="vocab_size=2048"):
        tokenizer.check_vocab(sp, 2048)
    with pytest.raises(DataError, match=r"must end in \.model"):
        tokenizer.load_tokenizer(tmp_path / "tok.vocab")
    with pytest.raises(DataError, match="does not exist"):
        tokenizer.load_tokenizer(tmp_path / "missing.model")
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"not a sentencepiece model")
    with pytest.raises(DataError) as ei:
        tokenizer.load_tokenizer(junk)
    assert "\n" not in str(ei.value) and "junk.model" in str(ei.value)


def test_accumulator_float64_and_merge():
    a = bpb.BpbAccumulator()
    a.add(torch.tensor([1.0, 2.0], dtype=torch.float32), 2, 5)
    a.add(3.5, 1, 2)
    assert a.loss == pytest.approx(6.5 / 3)
    assert a.bpb == pytest.approx(6.5 / (math.log(2) * 7))
    b = bpb.BpbAccumulator(1.0, 1, 1)
    m = a.merge(b)
    assert (m.nll_sum, m.tokens, m.bytes) == (7.5, 4, 8)
    assert math.isnan(bpb.BpbAccumulator().bpb)
    # float64 keeps tiny increments that float32 would swallow.
    big = bpb.BpbAccumulator(1e8, 0, 1)
    for _ in range(10):
        big.add(0.125, 1, 0)
    assert big.nll_sum == 1e8 + 1.25
