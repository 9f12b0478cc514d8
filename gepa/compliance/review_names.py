"""Names in reviewed code, shared by the static review's checks (`review.py` and its mixins): how an
expression is named (`name_of`), which names a statement binds (`assigned`), how a call is quoted
in a message (`short_call`), and the name patterns that read as a loss or a loss accumulator, an
optimizer, a calibration routine or a byte-length table.

The review mostly follows data (taint, targets); these patterns only decide what a value is
where its name or spelling is all there is to go on.
"""

from __future__ import annotations

import ast
import re

# Loss accumulators (`loss_sum`, `total_nll`, `running_bits`).
ACC = re.compile(r"(loss|nll|logp|logprob|bits|xent)_?(sum|total|acc|accum|tot)|(sum|total|tot|running)_?(loss|nll|logp|logprob|bits|xent)")
LOSSY = re.compile(r"nll|loss|logp|bits|xent|surpris|score|\bce\b|_ce|\blog2?\(")  # `-np.log(p)` is a loss too
# Tables indexed by a token that give its byte length or word start (a legal use of the target).
BYTE_LUT = re.compile(r"byte|leading_space|space_lut|piece_len|utf")
# The object a `.step()` belongs to when it is a training step.
OPT = re.compile(r"opt")
# Functions that collect quantisation calibration statistics.
CALIB = re.compile(r"hessian|calib|gptq|awq|act(ivation)?_?stats|collect_stats")


def name_of(node: ast.AST) -> str | None:
    """The identifying name of an expression: `x`, `a.b.x` -> x, `x[...]` -> x."""
    while isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def short_call(n: ast.Call, limit: int = 70) -> str:
    text = " ".join(ast.unparse(n).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def assigned(st) -> list[str]:
    out = []
    if isinstance(st, ast.Assign):
        for t in st.targets:
            out += [n.id for n in ast.walk(t) if isinstance(n, ast.Name)]
    elif isinstance(st, (ast.AnnAssign, ast.AugAssign)) and isinstance(st.target, ast.Name):
        out.append(st.target.id)
    elif isinstance(st, (ast.With, ast.If, ast.For)):
        for sub in st.body:
            out += assigned(sub)
    return out
