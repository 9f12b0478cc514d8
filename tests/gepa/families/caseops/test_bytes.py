"""CaseOps transform and canonical byte counts: lossless on the 200 bundled documents, summing per
document to its UTF-8 length, identical to the fixture's canonical sidecar token by token."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gepa import shards
from gepa.families.caseops import caps
from gepa.families.caseops.data import canonical_bytes, piece_counts
from gepa.tokenizer import load_tokenizer
from tests.support.paths import REPO

ROOT = REPO
FX = ROOT / "tests" / "data" / "caseops_small"
TOKENIZER = ROOT / "gepa" / "assets" / "fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model"
DOCS = [json.loads(line)["text"] for line in (ROOT / "gepa" / "assets" / "fineweb_val_sample_200docs.jsonl")
        .read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def sp():
    return load_tokenizer(TOKENIZER)


def test_transform_examples_and_inverse():
    assert caps.encode("Hello WORLD iPhone a I") == (caps.TITLE + "hello " + caps.ALLCAPS + "world i" + caps.CAPNEXT
                                                     + "phone a " + caps.TITLE + "i")
    tricky = "x\ue001y ÉCOLE McDonald's ABC1DEF"
    assert caps.decode(caps.encode(tricky)) == tricky
    assert caps.encode("\ue001") == caps.ESC + "\ue001"


def test_every_bundled_document_sums_to_its_utf8_length(sp):
    assert len(DOCS) == 200
    total = 0
    for text in DOCS:
        assert caps.decode(caps.encode(text)) == text
        ids, counts, _ = caps.encode_document(sp, text)
        assert len(ids) == len(counts) and min(counts) >= 0
        assert sum(counts) == len(text.encode("utf-8"))
        total += sum(counts)
    assert total == 1_489_515  # the spec's figure for the 200 sample documents


def test_fixture_stream_gets_exactly_the_canonical_sidecar():
    tokens = shards.read_shard(FX / "fineweb_val_000000.bin").astype(np.int64)
    sidecar = shards.read_shard(FX / "fineweb_val_bytes_000000.bin").astype(np.int64)
    counts, facts = canonical_bytes(tokens, TOKENIZER, 1, 8192)
    assert facts["documents_from_text"] == 14 and facts["documents_without_text"] == 0
    assert np.array_equal(counts, sidecar)


def test_documents_without_text_get_a_lower_bound_and_are_counted(sp):
    text = "Some  text\n\nwith runs"   # whitespace runs count 1 without the text
    ids, counts, _ = caps.encode_document(sp, text)
    stream = np.asarray([1] + ids, dtype=np.int64)
    got, facts = canonical_bytes(stream, TOKENIZER, 1, 8192)
    assert facts["documents_without_text"] == 1 and facts["method"] == "canonical+piece_lower_bound"
    assert got.sum() < len(text.encode("utf-8"))
    lut = piece_counts(sp, 8192)
    assert lut[1] == 0 and lut[4] == 0  # BOS and an operator cost nothing


def test_a_cut_last_document_matches_as_a_prefix(sp):
    ids, counts, _ = caps.encode_document(sp, DOCS[7])
    stream = np.asarray([1] + ids[:50], dtype=np.int64)
    got, facts = canonical_bytes(stream, TOKENIZER, 1, 8192)
    assert facts["documents_from_text"] == 1
    assert got[1:].tolist() == counts[:50]


def test_without_the_text_only_a_sidecar_that_agrees_with_the_pieces_is_used(tmp_path):
    tokens = shards.read_shard(FX / "fineweb_val_000000.bin").astype(np.int64)
    canon = shards.read_shard(FX / "fineweb_val_bytes_000000.bin").astype(np.int64)
    prep = shards.read_shard(FX / "sidecar_prep0419" / "fineweb_val_bytes_000000.bin").astype(np.int64)
    no_text = tmp_path / "none.jsonl"
    no_text.write_text("")
    got, facts = canonical_bytes(tokens, TOKENIZER, 1, 8192, jsonl=no_text, sidecar=canon)
    assert facts["documents_from_checked_sidecar"] == 14 and np.array_equal(got, canon)
    # The 04-19 prep sidecar charges operators 3 bytes: refused, the piece lower bound is used.
    got, facts = canonical_bytes(tokens, TOKENIZER, 1, 8192, jsonl=no_text, sidecar=prep)
    assert facts["documents_piece_lower_bound"] == 14 and facts["documents_from_checked_sidecar"] == 0
    assert got.sum() < prep.sum() and abs(int(got.sum()) - int(canon.sum())) < 0.01 * canon.sum()  # NFKC folds aside, <= canonical
    # Inflating the plain pieces of one document refuses that document only (a few differences
    # are allowed: NFKC folds move bytes between pieces).
    lower, _ = canonical_bytes(tokens, TOKENIZER, 1, 8192, jsonl=no_text)
    second_bos = int(np.nonzero(tokens == 1)[0][1])
    sp = load_tokenizer(TOKENIZER)
    no_space = np.array(["\u2581" not in sp.id_to_piece(int(t)) for t in tokens])
    plain = np.nonzero((canon == lower) & (canon > 0) & no_space)[0]
    tampered = canon.copy()
    tampered[plain[plain < second_bos][:40]] += 1
    _, facts = canonical_bytes(tokens, TOKENIZER, 1, 8192, jsonl=no_text, sidecar=tampered)
    assert facts["documents_from_checked_sidecar"] == 13 and facts["documents_piece_lower_bound"] == 1
