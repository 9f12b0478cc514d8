"""CaseOps validation data: the token stream, golfcheck's canonical byte counts, and a submitted
sidecar kept only for comparison (spec §3.3, §3.4).

The canonical count of a token comes from its piece surface in the document's own text, so the
documents are re-tokenized from text and matched to the stream's BOS-delimited documents by
their token ids (a document cut by the end of the stream matches as a prefix). The text comes
from the bundled FineWeb sample. For a document whose text golfcheck does not hold, the pieces
alone fix every count except how many bytes of whitespace a `▁` covers: a submitted sidecar is used
for such a document only if it agrees with the pieces (0 at BOS and operators, at least one byte
per `▁`, the exact count of every other piece and byte-fallback run but for a few NFKC folds);
otherwise the piece counts (`▁` = 1 byte), a lower bound (NFKC folds aside) that can only raise the
BPB. The result says how many documents took each route.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gepa import shards
from gepa.errors import DataError
from gepa.families.caseops import caps
from gepa.shards import BUNDLED_SAMPLE_JSONL
from gepa.tokenizer import load_tokenizer
from gepa.valdata import ValData, read_stream

_KEY = 16  # leading ids that index a document for matching
FOLD_ALLOWANCE = 3  # pieces per document whose count may differ from the piece (NFKC folds)


@dataclass
class _Corpus:
    by_key: dict[tuple[int, ...], list[tuple[np.ndarray, np.ndarray]]]


def _model_id(tokenizer: str | Path) -> tuple[str, int]:
    p = Path(tokenizer)
    st = p.stat()
    return str(p.resolve()), int(st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _corpus(tokenizer: str, _mtime: int, jsonl: str) -> _Corpus:
    sp = load_tokenizer(tokenizer)
    by_key: dict[tuple[int, ...], list[tuple[np.ndarray, np.ndarray]]] = {}
    with open(jsonl, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            text = json.loads(line)["text"]
            ids, counts, _ = caps.encode_document(sp, text)
            a, c = np.asarray(ids, dtype=np.int64), np.asarray(counts, dtype=np.int64)
            by_key.setdefault(tuple(ids[:_KEY]), []).append((a, c))
    return _Corpus(by_key=by_key)


def piece_counts(sp: Any, vocab_size: int) -> np.ndarray:
    """Bytes each piece implies without the text (control pieces 0, byte pieces 1, operators 0,
    `▁` 1, other characters their UTF-8 length)."""
    out = np.zeros(vocab_size, dtype=np.int64)
    for i in range(min(vocab_size, sp.get_piece_size())):
        if sp.is_control(i) or sp.is_unknown(i):
            continue
        if sp.is_byte(i):
            out[i] = 1
            continue
        piece = sp.id_to_piece(i).replace("\u2581", " ")
        out[i] = sum(len(ch.encode("utf-8")) for ch in piece if ch not in caps.OPERATORS)
    return out


@dataclass
class _PieceFacts:
    lower: np.ndarray     # bytes implied without the text (`▁` = 1)
    ctrl: np.ndarray      # control / unknown: always 0
    op: np.ndarray        # case operators: 0 (3 after an ESC)
    byte: np.ndarray      # byte-fallback pieces
    ws: np.ndarray        # pieces holding `▁` (a whitespace run of unknown length)
    esc: int


@functools.lru_cache(maxsize=4)
def _piece_facts(tokenizer: str, _mtime: int, vocab_size: int) -> _PieceFacts:
    sp = load_tokenizer(tokenizer)
    n = min(vocab_size, sp.get_piece_size())
    ctrl, op, byte, ws = (np.zeros(vocab_size, dtype=bool) for _ in range(4))
    esc = -1
    for i in range(n):
        piece = sp.id_to_piece(i)
        ctrl[i] = sp.is_control(i) or sp.is_unknown(i)
        byte[i] = sp.is_byte(i)
        op[i] = piece in caps.OPERATORS
        ws[i] = "\u2581" in piece and not byte[i]
        if piece == caps.ESC:
            esc = i
    return _PieceFacts(lower=piece_counts(sp, vocab_size), ctrl=ctrl, op=op, byte=byte, ws=ws, esc=esc)


def sidecar_agrees(seg: np.ndarray, side: np.ndarray, f: _PieceFacts) -> bool:
    """Whether a sidecar's entries for one document (its tokens after the BOS) are possible
    canonical counts of those pieces: see the module docstring."""
    after_esc = np.zeros(seg.size, dtype=bool)
    after_esc[1:] = seg[:-1] == f.esc
    op, ctrl, byte, ws = f.op[seg], f.ctrl[seg], f.byte[seg], f.ws[seg]
    low = f.lower[seg] + np.where(op & after_esc, caps.OPERATOR_BYTES, 0)
    if np.any(side[(ctrl | op) & ~after_esc] != 0) or np.any(side[op & after_esc] != caps.OPERATOR_BYTES):
        return False
    if np.any(side[ws] < 1) or np.any(side < 0):
        return False
    # NFKC folds (a fullwidth comma, a vulgar fraction) move a few bytes between pieces, so a
    # handful of plain pieces and byte-fallback runs may differ from their piece counts.
    plain = ~(ctrl | op | byte | ws)
    odd = int(np.count_nonzero(side[plain] != low[plain]))
    if byte.any():
        edges = np.diff(np.concatenate(([0], byte.astype(np.int8), [0])))
        starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
        csum = np.concatenate(([0], np.cumsum(side)))
        odd += int(np.count_nonzero(csum[ends] - csum[starts] != ends - starts))
    return odd <= max(FOLD_ALLOWANCE, seg.size // 100)


def _esc_fix(sp: Any, ids: np.ndarray, counts: np.ndarray) -> None:
    """An operator character right after ESC is a literal (3 bytes); patch those rare spots."""
    esc = [i for i in range(min(sp.get_piece_size(), 16)) if sp.id_to_piece(i) == caps.ESC]
    if not esc:
        return
    where = np.nonzero(ids[:-1] == esc[0])[0]
    for p in where.tolist():
        nxt = sp.id_to_piece(int(ids[p + 1]))
        if nxt and nxt[0] in caps.OPERATORS:
            counts[p + 1] += caps.OPERATOR_BYTES


def canonical_bytes(tokens: np.ndarray, tokenizer: str | Path, bos_id: int, vocab_size: int,
                    jsonl: str | Path = BUNDLED_SAMPLE_JSONL, sidecar: np.ndarray | None = None
                    ) -> tuple[np.ndarray, dict[str, Any]]:
    """Canonical bytes per position of the stream, and facts about how they were found."""
    corpus = _corpus(*_model_id(tokenizer), str(jsonl))
    sp = load_tokenizer(tokenizer)
    out = np.zeros(tokens.size, dtype=np.int64)
    bos = np.nonzero(tokens == bos_id)[0].tolist()
    if not bos or bos[0] != 0:
        bos = [0] + bos if tokens.size and tokens[0] != bos_id else bos
    ends = bos[1:] + [tokens.size]
    matched = unmatched = checked = 0
    lut = None
    per_doc: list[tuple[int, int]] = []
    for s, e in zip(bos, ends):
        lo = s + 1 if tokens[s] == bos_id else s
        seg = tokens[lo:e]
        per_doc.append((lo, e))
        if seg.size == 0:
            continue
        found = None
        for ids, counts in corpus.by_key.get(tuple(seg[:_KEY].tolist()), []):
            if ids.size >= seg.size and np.array_equal(ids[:seg.size], seg):
                found = counts[:seg.size]
                if ids.size == seg.size:
                    break
        if found is not None:
            out[lo:e] = found
            matched += 1
        elif sidecar is not None and sidecar_agrees(seg, sidecar[lo:e], _piece_facts(*_model_id(tokenizer),
                                                                                     vocab_size)):
            out[lo:e] = sidecar[lo:e]
            checked += 1
        else:
            if lut is None:
                lut = piece_counts(sp, vocab_size)
            out[lo:e] = lut[seg]
            _esc_fix(sp, seg, out[lo:e])
            unmatched += 1
    routes = ["canonical"] + (["checked_sidecar"] if checked else []) + (["piece_lower_bound"] if unmatched else [])
    facts = {"documents": matched + checked + unmatched, "documents_from_text": matched,
             "documents_from_checked_sidecar": checked, "documents_piece_lower_bound": unmatched,
             "documents_without_text": checked + unmatched, "method": "+".join(routes)}
    return out, facts


def sidecar_paths(val_glob: str, sidecar_glob: str | None, name: str | None) -> list[Path]:
    """The submitted sidecar to compare: `--sidecar`, else the config's file name next to the
    first validation shard (absent is fine: the score never needs it)."""
    if sidecar_glob:
        try:
            return shards.shard_paths(sidecar_glob, sidecars=True)
        except DataError:
            raise DataError(f"no byte sidecar matches {sidecar_glob} (--sidecar)") from None
    if not name:
        return []
    first = shards.shard_paths(val_glob)[0]
    cand = first.parent / name
    return [cand] if cand.is_file() else []


def load(val_glob: str, tokenizer: str | Path, vocab_size: int, bos_id: int, *, sidecar_glob: str | None,
         sidecar_name: str | None) -> ValData:
    tokens, paths, digest = read_stream(val_glob, vocab_size)
    arr = tokens.numpy()
    extra: dict[str, Any] = {}
    side = sidecar_paths(val_glob, sidecar_glob, sidecar_name)
    raw = None
    if side:
        raw = shards.read_tokens(side).astype(np.int64)
        if raw.size != arr.size:
            if sidecar_glob:
                raise DataError(f"the sidecar {side[0].name} holds {raw.size:,} entries for {arr.size:,} tokens; a "
                                "byte sidecar has one entry per token")
            extra["sidecar_error"] = f"{side[0].name}: {raw.size} entries for {arr.size} tokens"
            raw = None
        else:
            extra["sidecar"] = torch.from_numpy(raw)
            extra["sidecar_name"] = ", ".join(p.name for p in side)
    counts, facts = canonical_bytes(arr, tokenizer, bos_id, vocab_size, sidecar=raw)
    extra["bytes_facts"] = facts
    return ValData(tokens=tokens, target_bytes=torch.from_numpy(counts.astype(np.int32)), shard_paths=paths,
                   sha256=digest, extra=extra)
