"""Parse submitted Python written for a newer interpreter than the one running the review.

The challenge ran on Python 3.12 images, and real records use PEP 701 f-strings, which reuse
the outer quote inside a replacement field: `f"{", ".join(names)}"`. Python 3.11's parser
rejects that, which would leave a script (or the payload of a self-extracting wrapper)
unreviewed. `parse` first tries the running parser; on a syntax error it rewrites only the
delimiters of such f-strings to a quote the body does not use (`f'''{", ".join(names)}'''`)
and parses again. Line numbers are preserved (delimiters never span lines differently);
column offsets on the rewritten lines may shift. Nothing is ever executed.
"""

from __future__ import annotations

import ast

_QUOTES = ('"""', "'''", '"', "'")
_PREFIX = set("rRbBuUfF")


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    try:
        return ast.parse(source, filename=filename)
    except SyntaxError as first:
        try:
            fixed = downgrade_fstrings(source)
        except _Unparsable:
            raise first from None
        if fixed == source:
            raise
        try:
            return ast.parse(fixed, filename=filename)
        except SyntaxError:
            raise first from None


class _Unparsable(Exception):
    pass


def downgrade_fstrings(source: str) -> str:
    """Rewrite PEP 701 f-string delimiters so that a Python 3.8-3.11 parser accepts them."""
    out: list[str] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c == "#":
            j = source.find("\n", i)
            j = n if j < 0 else j
            out.append(source[i:j])
            i = j
            continue
        start = _string_start(source, i)
        if start is not None:
            text, i = _string(source, i, start)
            out.append(text)
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _string_start(s: str, i: int):
    """(prefix, quote) when a string literal starts at i, else None."""
    if i > 0 and (s[i - 1].isalnum() or s[i - 1] == "_"):
        return None
    j = i
    while j < len(s) and j - i < 2 and s[j] in _PREFIX:
        j += 1
    for q in _QUOTES:
        if s.startswith(q, j):
            return s[i:j], q
    return None


def _string(s: str, i: int, start) -> tuple[str, int]:
    """Copy (and if needed rewrite) the literal starting at i; return it and the index after it."""
    prefix, q = start
    body_start = i + len(prefix) + len(q)
    if "f" not in prefix.lower():
        j = _plain_end(s, body_start, q, raw="r" in prefix.lower())
        return s[i:j + len(q)], j + len(q)
    parts, j, inner_quotes = _fstring_body(s, body_start, q, raw="r" in prefix.lower())
    body = "".join(parts)
    newq = q
    if any(x in q for x in inner_quotes):
        for cand in _QUOTES:
            if cand[0] not in inner_quotes and cand not in body and not body.endswith(cand[0]) and \
                    ("\n" not in body or len(cand) == 3):
                newq = cand
                break
    return prefix + newq + body + newq, j + len(q)


def _plain_end(s: str, j: int, q: str, raw: bool) -> int:
    n = len(s)
    while j < n:
        if s[j] == "\\":
            j += 2
            continue
        if s.startswith(q, j):
            return j
        if len(q) == 1 and s[j] == "\n":
            raise _Unparsable
        j += 1
    raise _Unparsable


def _fstring_body(s: str, j: int, q: str, raw: bool):
    """Scan an f-string body from j; return (rewritten parts, index of the closing quote,
    quote characters used by strings inside replacement fields)."""
    parts: list[str] = []
    inner: set[str] = set()
    n = len(s)
    while j < n:
        c = s[j]
        if c == "\\":
            parts.append(s[j:j + 2])
            j += 2
            continue
        if s.startswith(q, j):
            return parts, j, inner
        if c == "{":
            if s.startswith("{{", j):
                parts.append("{{")
                j += 2
                continue
            field, j = _field(s, j, inner)
            parts.append(field)
            continue
        if len(q) == 1 and c == "\n":
            raise _Unparsable
        parts.append(c)
        j += 1
    raise _Unparsable


def _field(s: str, j: int, inner: set[str]) -> tuple[str, int]:
    """Copy a replacement field `{expr!r:spec}` starting at s[j] == '{' (nested literals rewritten)."""
    out = ["{"]
    depth = 0
    j += 1
    n = len(s)
    while j < n:
        c = s[j]
        start = _string_start(s, j)
        if start is not None:
            text, j2 = _string(s, j, start)
            inner.add(text[len(start[0])])
            out.append(text)
            j = j2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "}":
            if depth == 0:
                out.append("}")
                return "".join(out), j + 1
            depth -= 1
        elif c == ":" and depth == 0:
            # format spec: literal text with nested fields, up to the closing brace
            out.append(":")
            j += 1
            while j < n and s[j] != "}":
                if s[j] == "{":
                    sub, j = _field(s, j, inner)
                    out.append(sub)
                    continue
                out.append(s[j])
                j += 1
            continue
        elif c == "#":
            raise _Unparsable
        out.append(c)
        j += 1
    raise _Unparsable
