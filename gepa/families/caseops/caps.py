"""The CaseOps lossless-caps transform and golfcheck's canonical per-token byte counts.

The transform (spec §3.1) rewrites ASCII letter case as private-use operator characters so the
tokenizer sees lowercase text: TITLE, ALLCAPS and CAPNEXT mark case, ESC protects a literal
operator character. Bytes are charged on the *original* text (spec §3.3): a token is worth the
UTF-8 bytes of its piece surface, minus 3 for every operator character in it that acts as an
operator. Summed over a document this is the document's UTF-8 length, which is what makes the
counts checkable, and why a submitted sidecar is compared against them rather than trusted.
"""

from __future__ import annotations

from typing import Any, Iterable

TITLE, ALLCAPS, CAPNEXT, ESC = "\ue001", "\ue002", "\ue003", "\ue004"
OPERATORS = frozenset((TITLE, ALLCAPS, CAPNEXT, ESC))
OPERATOR_BYTES = 3  # each operator is a 3-byte UTF-8 character


def _is_upper(c: str) -> bool:
    return "A" <= c <= "Z"


def _is_letter(c: str) -> bool:
    return "a" <= c <= "z" or "A" <= c <= "Z"


def _word(w: str, out: list[str]) -> None:
    if not any(_is_upper(c) for c in w):
        out.append(w)
    elif len(w) >= 2 and all(_is_upper(c) for c in w):
        out.append(ALLCAPS + w.lower())
    elif _is_upper(w[0]) and not any(_is_upper(c) for c in w[1:]):
        out.append(TITLE + w.lower())
    else:
        if _is_upper(w[0]):
            out.append(TITLE)
        out.append(w[0].lower())
        for c in w[1:]:
            if _is_upper(c):
                out.append(CAPNEXT)
            out.append(c.lower())


def encode(text: str) -> str:
    """The CaseOps v1 transform of `text` (exactly invertible by `decode`)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if _is_letter(c):
            j = i + 1
            while j < n and _is_letter(text[j]):
                j += 1
            _word(text[i:j], out)
            i = j
            continue
        out.append(ESC + c if c in OPERATORS else c)
        i += 1
    return "".join(out)


def decode(text: str) -> str:
    """Inverse of `encode` (raises ValueError on a dangling operator)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == ESC:
            if i + 1 >= n:
                raise ValueError("dangling ESC at the end of the text")
            out.append(text[i + 1])
            i += 2
        elif c == ALLCAPS:
            j = i + 1
            while j < n and "a" <= text[j] <= "z":
                j += 1
            if j == i + 1:
                raise ValueError("ALLCAPS not followed by a lowercase word")
            out.append(text[i + 1:j].upper())
            i = j
        elif c in (TITLE, CAPNEXT):
            if i + 1 >= n or not ("a" <= text[i + 1] <= "z"):
                raise ValueError("case operator not followed by a lowercase letter")
            out.append(text[i + 1].upper())
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class SurfaceCounter:
    """Walks piece surfaces in order through the decoding state machine: an operator character
    acting as an operator counts 0 bytes, a character escaped by ESC (even an operator) and any
    other character count their UTF-8 length. State (a pending ESC) carries across pieces."""

    def __init__(self) -> None:
        self.escaped = False

    def count(self, surface: str) -> int:
        total = 0
        for c in surface:
            if self.escaped:
                total += len(c.encode("utf-8"))
                self.escaped = False
            elif c == ESC:
                self.escaped = True
            elif c in OPERATORS:
                pass
            else:
                total += len(c.encode("utf-8"))
        return total


def canonical_counts(surfaces: Iterable[str]) -> list[int]:
    """Canonical bytes of each piece of one document, from the pieces' surfaces."""
    counter = SurfaceCounter()
    return [counter.count(s) for s in surfaces]


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if b < 0x80:
            return out, pos
        shift += 7


def _fields(buf: bytes):
    """(field number, value) of a protobuf message: ints for varints, bytes for the rest."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
        yield field, value


def pieces_with_surfaces(sp: Any, text: str) -> list[tuple[int, str]]:
    """(id, surface) of every piece sentencepiece produces for `text`. The surfaces come from the
    serialized SentencePieceText (pieces = field 2; id = 2, surface = 3), read here directly so
    that no protobuf runtime is needed."""
    raw = sp.encode(text, out_type="serialized_proto")
    out = []
    for field, value in _fields(raw):
        if field != 2:
            continue
        pid, surface = 0, b""
        for f, v in _fields(value):
            if f == 2:
                pid = v
            elif f == 3:
                surface = v
        out.append((int(pid), surface.decode("utf-8")))
    return out


def encode_document(sp: Any, text: str) -> tuple[list[int], list[int], int]:
    """(ids, canonical bytes per id, operator-token count) of one document, without its BOS."""
    pieces = pieces_with_surfaces(sp, encode(text))
    ids = [pid for pid, _ in pieces]
    counts = canonical_counts(s for _, s in pieces)
    ops = sum(1 for _, s in pieces if s and all(c in OPERATORS for c in s))
    return ids, counts, ops
