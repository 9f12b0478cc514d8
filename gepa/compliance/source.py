"""Turn the files of a submission into the text CPython would run, and say what a reader must know.

A reviewer (human or the static review) reads a file as UTF-8. CPython reads it through the
PEP 263 coding cookie: `# -*- coding: utf-7 -*-` makes `+AAo-import requests` on a comment line
decode to a newline followed by real code. `decode_source` decodes bytes exactly as CPython's
tokenizer chooses (`tokenize.detect_encoding` implements the same BOM and cookie logic on lines 1
and 2) and reports a finding whenever the declared codec changes what the text says, so the
review sees the code that runs and the submitter is told to ship plain UTF-8.

It also reports Unicode bidirectional controls ("Trojan Source"), which make the order a reader
sees differ from the order Python parses, and classifies the other files of a bundle: native
sources (C/C++/CUDA, shared objects) cannot be reviewed here and go to a human.
"""

from __future__ import annotations

import io
import posixpath
import tokenize
from dataclasses import dataclass, field

# The explicit embedding/override/isolate controls of the Trojan Source paper (CVE-2021-42574).
BIDI_CONTROLS = {
    "\u202a": "LRE", "\u202b": "RLE", "\u202c": "PDF", "\u202d": "LRO", "\u202e": "RLO",
    "\u2066": "LRI", "\u2067": "RLI", "\u2068": "FSI", "\u2069": "PDI",
}
PYTHON_SUFFIXES = (".py", ".pyw")
# Code that runs but is not Python: it cannot be reviewed statically here.
NATIVE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".c++", ".h", ".hh", ".hpp", ".hxx", ".cu", ".cuh",
                   ".pyx", ".pxd", ".so", ".pyd", ".dylib", ".dll", ".o", ".a", ".ptx", ".cubin", ".metal")
SCRIPT_SUFFIXES = (".sh", ".bash")
CODE_SUFFIXES = PYTHON_SUFFIXES + NATIVE_SUFFIXES + SCRIPT_SUFFIXES


@dataclass(frozen=True)
class SourceIssue:
    rule: str      # code.encoding | code.bidi
    line: int
    message: str


@dataclass
class Decoded:
    text: str
    encoding: str
    issues: list[SourceIssue] = field(default_factory=list)


def is_python(name: str) -> bool:
    return name.lower().endswith(PYTHON_SUFFIXES)


def is_native(name: str) -> bool:
    return name.lower().endswith(NATIVE_SUFFIXES)


def is_code(name: str) -> bool:
    """A shipped file whose bytes count toward the code size of the cap."""
    return name.lower().endswith(CODE_SUFFIXES) and not posixpath.basename(name).startswith(".")


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def decode_source(data: bytes) -> Decoded:
    """Decode a Python source file's bytes as CPython would (PEP 263), with findings."""
    issues: list[SourceIssue] = []
    try:
        encoding, lines = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        # Unknown codec, or a BOM that contradicts the cookie: CPython refuses to run the file.
        msg = str(getattr(exc, "msg", exc))
        issues.append(SourceIssue("code.encoding", 1, f"Python refuses this file's encoding declaration ({msg}); "
                                                     "save the file as plain UTF-8 without a coding cookie."))
        text = data.decode("utf-8", "replace")
        return Decoded(text, "utf-8", issues + bidi_issues(text))
    as_utf8 = data.decode("utf-8", "replace")
    if encoding in ("utf-8", "utf-8-sig"):
        text = data.decode(encoding, "replace")
    else:
        cookie_line = 1 if len(lines) < 2 else 2
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            issues.append(SourceIssue("code.encoding", cookie_line,
                                      f"the file declares `coding: {encoding}` but does not decode with it ({exc}); "
                                      "CPython would not run it. Save it as plain UTF-8."))
            text = as_utf8
        else:
            if text.lstrip("\ufeff") != as_utf8.lstrip("\ufeff"):
                first = next((i for i, (a, b) in enumerate(zip(text, as_utf8)) if a != b), min(len(text), len(as_utf8)))
                issues.append(SourceIssue(
                    "code.encoding", cookie_line,
                    f"the file declares `coding: {encoding}`, so Python runs different text than a UTF-8 reader sees "
                    f"(they first differ on line {_line_of(text, first)}). The review follows the {encoding} text; "
                    "submissions must be plain UTF-8."))
    return Decoded(text, encoding, issues + bidi_issues(text))


def bidi_issues(text: str) -> list[SourceIssue]:
    out: list[SourceIssue] = []
    if not any(c in text for c in BIDI_CONTROLS):
        return out
    for lineno, line in enumerate(text.splitlines(), start=1):
        found = sorted({BIDI_CONTROLS[c] for c in line if c in BIDI_CONTROLS})
        if found:
            out.append(SourceIssue("code.bidi", lineno,
                                   f"Unicode bidirectional control character(s) {', '.join(found)} reorder how this "
                                   "line displays, so the code a reader sees is not the code Python parses "
                                   "(Trojan Source). Remove them."))
    return out
