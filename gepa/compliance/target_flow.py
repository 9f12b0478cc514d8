"""The target token when no name says so: its positions, and scores edited by comparing it.

The review finds the target by what scoring does with it (the label of `cross_entropy`, the
index of a `gather`). Two shapes from ruled PRs hide it further:

- **Target positions.** `where = np.arange(start + 1, end + 1)` lines up, element for element,
  with the tokens being predicted, so `stream[where]` *is* the target even though it is never
  named; a helper given `(stream, where)` then mixes the answer into a hash (PR #797). A position
  array is a target position when it is an `arange` over the bounds of the target slice, or over
  bounds that are both "one past" (`a + 1`, `b + 1`); masking it (`where[ok]`) keeps that, while
  shifting it back (`where - k`) gives context positions, which are legal.
- **Stored matches.** `same = stored[a:b] == y; nll = nll * ~same` zeroes the loss wherever
  content shipped with the submission equals the answer (the paid prefix of PR #278). Legitimate
  scoring never edits a token's loss because something stored equals the target; comparing with
  the model's own prediction or with a padding id is not that, and is left alone.

Functions here work on one function's AST; `review.py` threads the names across calls.
"""

from __future__ import annotations

import ast
import re

_ARANGE = {"arange", "range"}
# The compared side is the model's own output, or a special-token constant: not stored content.
_PREDICTED = re.compile(r"logit|pred|argmax|topk|top_k|guess|greedy|model_out|out_tok|sample|hint")
_CONST_NAME = re.compile(r"^[A-Z0-9_]+$|(^|_)(id|idx|token_id|tok_id)$|^(pad|bos|eos|unk|ignore|mask_id|sep)")
_LOSS_NAME = re.compile(r"nll|loss|logp|bits|xent|surpris|\bce\b|_ce")


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _base(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Subscript, ast.Attribute, ast.Call)):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node.id if isinstance(node, ast.Name) else None


def _one_past(e: ast.AST) -> bool:
    return isinstance(e, ast.BinOp) and isinstance(e.op, ast.Add) and isinstance(e.right, ast.Constant) \
        and e.right.value == 1


def _text(e: ast.AST | None) -> str:
    return "" if e is None else " ".join(ast.unparse(e).split())


def _target_slices(nodes: list[ast.AST], targets: set[str], raw: set[str]) -> set[tuple[str, str]]:
    """(lower, upper) of every `T = V[lower:upper]` that binds a target name from raw tokens."""
    out = set()
    for n in nodes:
        if not (isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id in targets for t in n.targets)):
            continue
        for s in ast.walk(n.value):
            if isinstance(s, ast.Subscript) and isinstance(s.slice, ast.Slice) and _base(s.value) in raw:
                out.add((_text(s.slice.lower), _text(s.slice.upper)))
    return out


def target_positions(nodes: list[ast.AST], targets: set[str], raw: set[str], pos: frozenset = frozenset()) -> set[str]:
    """Names in `nodes` (one function's live nodes) bound to positions of the predicted tokens."""
    found = set(pos)
    slices = _target_slices(nodes, targets, raw)
    for n in nodes:
        if not (isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)):
            continue
        v, shifted = n.value, False
        if isinstance(v, ast.BinOp) and isinstance(v.op, ast.Add) and isinstance(v.right, ast.Constant) and v.right.value == 1:
            v, shifted = v.left, True
        while isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr in ("astype", "to", "long", "cuda"):
            v = v.func.value
        if isinstance(v, ast.Call) and (getattr(v.func, "attr", None) or getattr(v.func, "id", None)) in _ARANGE \
                and len(v.args) >= 2:
            lo, hi = v.args[0], v.args[1]
            if shifted or (_one_past(lo) and _one_past(hi)) or (_text(lo), _text(hi)) in slices:
                found.add(n.targets[0].id)
    for _ in range(2):  # `sel = where[ok]` keeps the positions; `where - k` does not
        for n in nodes:
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name) \
                    and isinstance(n.value, ast.Subscript) and isinstance(n.value.value, ast.Name) \
                    and n.value.value.id in found:
                found.add(n.targets[0].id)
    return found


def is_position_read(node: ast.AST, raw: set[str] | frozenset, pos: set[str] | frozenset) -> bool:
    """`V[P]` or `V[P[mask]]` with V holding validation tokens and P target positions."""
    if not pos:
        return False
    for n in ast.walk(node):
        if isinstance(n, ast.Subscript) and _base(n.value) in raw:
            s = n.slice
            if isinstance(s, ast.Name) and s.id in pos:
                return True
            if isinstance(s, ast.Subscript) and isinstance(s.value, ast.Name) and s.value.id in pos:
                return True
    return False


def _stored_side(e: ast.AST, assigns: dict[str, ast.AST]) -> bool:
    """Stored content: an array read (a slice or element of something) that is neither a model
    prediction nor a special-token constant; followed through one assignment."""
    if isinstance(e, ast.Constant):
        return False
    names = _names(e)
    if any(_PREDICTED.search(x.lower()) for x in names):
        return False
    if isinstance(e, ast.Name):
        if _CONST_NAME.search(e.id):
            return False
        src = assigns.get(e.id)
        return src is not None and _stored_side(src, {})
    base = e
    while isinstance(base, ast.Call) and isinstance(base.func, ast.Attribute):
        base = base.func.value
    return isinstance(base, ast.Subscript) and not _CONST_NAME.search(_base(base) or "")


def stored_match(nodes: list[ast.AST], is_target) -> tuple[ast.AST, ast.AST] | None:
    """(comparison, edit) when a loss is multiplied by, or zeroed through, a mask that compares
    the target with stored content. `is_target(expr)` says whether an expression is the target."""
    assigns = {n.targets[0].id: n.value for n in nodes
               if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)}
    masks: dict[str, ast.Compare] = {}
    compares = []
    for n in nodes:
        if isinstance(n, ast.Compare) and len(n.ops) == 1 and isinstance(n.ops[0], (ast.Eq, ast.NotEq)):
            left, right = n.left, n.comparators[0]
            if (is_target(right) and not is_target(left) and _stored_side(left, assigns)) or \
                    (is_target(left) and not is_target(right) and _stored_side(right, assigns)):
                compares.append(n)
    if not compares:
        return None
    ids = {id(c) for c in compares}
    for _ in range(3):
        for n in nodes:
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
                hit = next((c for c in ast.walk(n.value) if id(c) in ids), None) or \
                    next((masks[x] for x in _names(n.value) if x in masks), None)
                if hit is not None:
                    masks.setdefault(n.targets[0].id, hit)

    def mask_of(e: ast.AST) -> ast.Compare | None:
        return next((c for c in ast.walk(e) if id(c) in ids), None) or \
            next((masks[x] for x in _names(e) if x in masks), None)

    def lossy(e: ast.AST) -> str | None:
        b = _base(e)
        return b if b and _LOSS_NAME.search(b.lower()) else None

    for n in nodes:
        if isinstance(n, ast.AugAssign) and isinstance(n.op, ast.Mult) and lossy(n.target):
            m = mask_of(n.value)
            if m is not None:
                return m, n
        elif isinstance(n, ast.Assign) and len(n.targets) == 1 and lossy(n.targets[0]):
            loss = lossy(n.targets[0])
            v = n.value
            if isinstance(v, ast.BinOp) and isinstance(v.op, ast.Mult):
                sides = (v.left, v.right)
                for a, b in (sides, sides[::-1]):
                    if loss in _names(a) and mask_of(b) is not None:
                        return mask_of(b), n
            if isinstance(n.targets[0], ast.Subscript) and isinstance(v, ast.Constant) and v.value == 0:
                m = mask_of(n.targets[0].slice)
                if m is not None:
                    return m, n
        elif isinstance(n, ast.Call):
            short = getattr(n.func, "attr", None) or getattr(n.func, "id", None)
            if short == "where" and len(n.args) == 3 and isinstance(n.args[1], ast.Constant) and lossy(n.args[2]):
                m = mask_of(n.args[0])
                if m is not None:
                    return m, n
            if short in ("masked_fill", "masked_fill_") and isinstance(n.func, ast.Attribute) and lossy(n.func.value) \
                    and n.args:
                m = mask_of(n.args[0])
                if m is not None:
                    return m, n
    return None
