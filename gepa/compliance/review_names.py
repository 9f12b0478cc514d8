"""Name heuristics shared by the static review's checks (`review.py`, `score_slots.py`,
`target_keys.py`): how an expression is named, and which names or code read as a loss or as a
per-token byte-length table.

The review mostly follows data (taint, targets); these patterns only decide what a value is
where its name or spelling is all there is to go on.
"""

from __future__ import annotations

import ast
import re

LOSSY = re.compile(r"nll|loss|logp|bits|xent|surpris|score|\bce\b|_ce|\blog2?\(")  # `-np.log(p)` is a loss too
# Tables indexed by a token that give its byte length or word start (a legal use of the target).
BYTE_LUT = re.compile(r"byte|leading_space|space_lut|piece_len|utf")


def name_of(node: ast.AST) -> str | None:
    """The identifying name of an expression: `x`, `a.b.x` -> x, `x[...]` -> x."""
    while isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None
