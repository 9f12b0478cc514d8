"""Line numbering shared by the rule engine and the reviewer's code view.

Only "\r\n", "\r" and "\n" end a line, as Python's tokenizer (and so `ast` line numbers) counts.
`str.splitlines` also breaks at U+2028, U+2029, U+0085, \v, \f and \x1c-\x1e, so a file holding
one of those would be numbered differently by the two and evidence links would point at the wrong
line.
"""

from __future__ import annotations

import re

_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """The lines of `text` without their endings; a final line ending adds no empty line."""
    lines = _BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines
