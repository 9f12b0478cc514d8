"""CaseOps validation data: the token stream, golfcheck's canonical byte counts, and a submitted
sidecar kept only for comparison (spec §3.3, §3.4).

The canonical count of a token comes from its piece surface in the document's own text, so the
documents are re-tokenized from text and matched to the stream's BOS-delimited documents by
their token ids (a document cut by the end of the stream matches as a prefix). The text comes
from the bundled FineWeb sample. A document whose text golfcheck does not hold gets the counts
its pieces imply without the text (a whitespace run counts 1, not its length; operators 0): a
lower bound that can only raise the BPB, and the result says how many documents needed it.
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
                    jsonl: str | Path = BUNDLED_SAMPLE_JSONL) -> tuple[np.ndarray, dict[str, Any]]:
    """Canonical bytes per position of the stream, and facts about how they were found."""
    corpus = _corpus(*_model_id(tokenizer), str(jsonl))
    sp = load_tokenizer(tokenizer)
    out = np.zeros(tokens.size, dtype=np.int64)
    bos = np.nonzero(tokens == bos_id)[0].tolist()
    if not bos or bos[0] != 0:
        bos = [0] + bos if tokens.size and tokens[0] != bos_id else bos
    ends = bos[1:] + [tokens.size]
    matched = unmatched = 0
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
        else:
            if lut is None:
                lut = piece_counts(sp, vocab_size)
            out[lo:e] = lut[seg]
            _esc_fix(sp, seg, out[lo:e])
            unmatched += 1
    facts = {"documents": matched + unmatched, "documents_from_text": matched,
             "documents_without_text": unmatched,
             "method": "canonical" if not unmatched else "canonical+piece_lower_bound"}
    return out, facts


def sidecar_paths(val_glob: str, sidecar_glob: str | None, name: str | None) -> list[Path]:
    """The submitted sidecar to compare: `--sidecar`, else the config's file name next to the
    first validation shard (absent is fine: the score never needs it)."""
    if sidecar_glob:
        return shards.shard_paths(sidecar_glob, sidecars=True)
    if not name:
        return []
    first = shards.shard_paths(val_glob)[0]
    cand = first.parent / name
    return [cand] if cand.is_file() else []


def load(val_glob: str, tokenizer: str | Path, vocab_size: int, bos_id: int, *, sidecar_glob: str | None,
         sidecar_name: str | None) -> ValData:
    tokens, paths, digest = read_stream(val_glob, vocab_size)
    arr = tokens.numpy()
    counts, facts = canonical_bytes(arr, tokenizer, bos_id, vocab_size)
    extra: dict[str, Any] = {"bytes_facts": facts}
    side = sidecar_paths(val_glob, sidecar_glob, sidecar_name)
    if side:
        raw = shards.read_tokens(side).astype(np.int64)
        if raw.size != arr.size:
            if sidecar_glob:
                raise DataError(f"the sidecar {side[0].name} holds {raw.size:,} entries for {arr.size:,} tokens; a "
                                "byte sidecar has one entry per token")
            extra["sidecar_error"] = f"{side[0].name}: {raw.size} entries for {arr.size} tokens"
        else:
            extra["sidecar"] = torch.from_numpy(raw)
            extra["sidecar_name"] = ", ".join(p.name for p in side)
    return ValData(tokens=tokens, target_bytes=torch.from_numpy(counts.astype(np.int32)), shard_paths=paths,
                   sha256=digest, extra=extra)
