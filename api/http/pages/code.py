"""Line-numbered, syntax-highlighted views of submitted text files (train_gpt.py, logs, configs).

Highlighting uses the standard library's `tokenize` on the source text: it only lexes, it never
imports, compiles or runs the submission. Output is one escaped HTML string per line, so the
template can give each line an anchor (`#L123`) for the file:line links of rule evidence.
A file that does not tokenize (broken indentation, a stray bracket) is shown plain from the
first bad line on; nothing the submitter writes can break the page.
"""

from __future__ import annotations

import io
import keyword
import token
import tokenize
from dataclasses import dataclass

from markupsafe import Markup, escape

from gepa.lines import split_lines

MAX_VIEW_BYTES = 4_000_000  # bigger files are offered as a truncated view
_BUILTINS = frozenset({"print", "len", "range", "int", "float", "str", "dict", "list", "tuple", "set", "open",
                       "super", "isinstance", "getattr", "setattr", "min", "max", "sum", "zip", "enumerate",
                       "bool", "type", "exec", "eval", "compile", "__import__"})


@dataclass(frozen=True)
class Line:
    number: int
    html: Markup


def _classify(tok: tokenize.TokenInfo, prev: tokenize.TokenInfo | None) -> str | None:
    if tok.type == tokenize.COMMENT:
        return "c"
    if tok.type == tokenize.STRING or tok.type in _FSTRING_TYPES:
        return "s"
    if tok.type == tokenize.NUMBER:
        return "n"
    if tok.type == tokenize.NAME:
        if keyword.iskeyword(tok.string) or keyword.issoftkeyword(tok.string):
            return "k"
        if prev is not None and prev.type == tokenize.NAME and prev.string in ("def", "class"):
            return "f"
        if tok.string in _BUILTINS:
            return "b"
    if tok.type == tokenize.OP and tok.string == "@":
        return "k"
    return None


_FSTRING_TYPES = {getattr(token, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(token, n)}


def highlight_python(text: str) -> list[Line]:
    # Numbered as the rule engine numbers them (gepa.lines); the tokenizer then reads the same lines.
    lines = split_lines(text)
    text = "\n".join(lines) + "\n"
    spans: list[list[tuple[int, int, str]]] = [[] for _ in lines]
    good_until = len(lines)  # lines after a tokenize error are shown plain
    prev: tokenize.TokenInfo | None = None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            cls = _classify(tok, prev)
            if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                prev = tok
            if cls is None:
                continue
            (sr, sc), (er, ec) = tok.start, tok.end
            for row in range(sr, er + 1):
                if row - 1 >= len(lines):
                    break
                a = sc if row == sr else 0
                b = ec if row == er else len(lines[row - 1])
                if b > a:
                    spans[row - 1].append((a, b, cls))
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        row = getattr(exc, "lineno", None) or (exc.args[1][0] if len(exc.args) > 1 else 1)
        good_until = max(0, int(row) - 1)
    out = []
    for i, src in enumerate(lines):
        if i >= good_until or not spans[i]:
            out.append(Line(i + 1, Markup(escape(src))))
            continue
        parts, pos = [], 0
        for a, b, cls in sorted(spans[i]):
            if a < pos:
                continue  # overlapping spans (f-string parts): keep the first
            parts.append(str(escape(src[pos:a])))
            parts.append(f'<span class="tok-{cls}">{escape(src[a:b])}</span>')
            pos = b
        parts.append(str(escape(src[pos:])))
        out.append(Line(i + 1, Markup("".join(parts))))
    return out


def plain_lines(text: str) -> list[Line]:
    return [Line(i + 1, Markup(escape(s))) for i, s in enumerate(split_lines(text))]


def view_lines(data: bytes, filename: str) -> tuple[list[Line], bool]:
    """(lines, truncated) for a stored file; Python files are highlighted."""
    truncated = len(data) > MAX_VIEW_BYTES
    text = data[:MAX_VIEW_BYTES].decode("utf-8", "replace")
    if filename.endswith(".py"):
        return highlight_python(text), truncated
    return plain_lines(text), truncated


def is_text(data: bytes) -> bool:
    """A cheap binary sniff: NUL bytes in the first 8 kB mean not text (an artifact)."""
    return b"\x00" not in data[:8192]
