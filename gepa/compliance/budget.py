"""Training data read after the training clock stopped (calibration outside the 600 s budget).

The ruling on PR #615: a run that trains for the full 600 s and only then collects GPTQ
calibration statistics from training data spends training-data compute outside the budget.
The shape is structural, not a name:

- a **budget loop**: a loop that runs backward/optimizer steps and compares elapsed time with a
  budget (`... >= max_wallclock_ms`, `perf_counter() - start >= BUDGET_S`);
- the budget is **not reserved**: nothing is subtracted from it (`budget - reserve`,
  `max_wallclock_ms -= reserve_s * 1000`) or scaled down, so the loop may use all of it;
- **after** that loop (later in the same body, or later in a caller than the call that trains), a
  call reads training data: its arguments are a training source (`train_files`, the train glob, a
  loader built from it), or the called function reads one.

Self-generated calibration (#1019, legal) reads no training data and is not matched.
"""

from __future__ import annotations

import ast
import re

_BUDGET = re.compile(r"wallclock|budget|time_limit|max_time|max_seconds|max_train_time")
_TRAIN_STR = re.compile(r"fineweb_train|(^|[/_*])train_\*|(^|/)train[_-]?\d*\.(bin|npy)$")
_TRAIN_LOC = re.compile(r"^train_(files?|pattern|glob|shards?|path|paths|data_path|bin|dir)$|^train_?glob$")


def _ident(n: ast.AST) -> str | None:
    if isinstance(n, ast.Name):
        return n.id
    if isinstance(n, ast.Attribute):
        return n.attr
    return None


def mentions_train(node: ast.AST, names: set[str] = frozenset()) -> bool:
    """A training-data source: the train glob as a string, a config field holding it, or a name
    bound from one (`names`)."""
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and _TRAIN_STR.search(n.value):
            return True
        i = _ident(n)
        if i and (_TRAIN_LOC.match(i.lower()) or (isinstance(n, ast.Name) and n.id in names)):
            return True
    return False


def train_names(nodes: list[ast.AST]) -> set[str]:
    """Names bound directly from a training source: `train_loader = Loader(args.train_files)`.
    Not what is later drawn from them (`x, y = train_loader.next_batch()` is the training step's)."""
    return {x.id for n in nodes if isinstance(n, ast.Assign) and mentions_train(n.value)
            for t in n.targets for x in ast.walk(t) if isinstance(x, ast.Name)}


def _budget_side(cmp: ast.Compare, budget_names: set[str]) -> ast.AST | None:
    for side in [cmp.left, *cmp.comparators]:
        for n in ast.walk(side):
            i = _ident(n)
            if i and (_BUDGET.search(i.lower()) or i in budget_names):
                return side
    return None


def _reserved(side: ast.AST, scope: list[ast.AST]) -> bool:
    """The budget the loop compares with is cut: `B - r`, `B * 0.97`, or a name so bound or
    decreased (`B -= r`, `B = B - r`) anywhere in scope."""
    for n in ast.walk(side):
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub):
            return True
        if isinstance(n, ast.Constant) and isinstance(n.value, float) and 0 < n.value < 1:
            return True
    names = {_ident(n) for n in ast.walk(side)} - {None}
    for n in scope:
        if isinstance(n, ast.AugAssign) and isinstance(n.op, ast.Sub) and _ident(n.target) in names:
            return True
        if isinstance(n, ast.Assign) and any(_ident(t) in names for t in n.targets) and \
                any(isinstance(b, ast.BinOp) and isinstance(b.op, ast.Sub) for b in ast.walk(n.value)):
            return True
    return False


def budget_loops(fn_nodes: list[ast.AST], scope: list[ast.AST], is_train_event) -> list[tuple[ast.AST, ast.Compare, bool]]:
    """(loop, the time comparison, reserved?) for each outermost loop in `fn_nodes` that trains and
    stops on a time budget. `scope`: the assignments that may bind or cut the budget (module + function)."""
    loops = [n for n in fn_nodes if isinstance(n, (ast.For, ast.While))
             and any(isinstance(c, ast.Call) and is_train_event(c) for c in ast.walk(n))]
    if not loops:
        return []

    def budgety(v: ast.AST) -> bool:  # `max_wallclock_ms`, or `os.environ.get("MAX_WALLCLOCK_SECONDS")`
        i = _ident(v) or (v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else None)
        return bool(i) and bool(_BUDGET.search(i.lower()))
    budget_names = {x.id for n in scope if isinstance(n, ast.Assign) and any(budgety(v) for v in ast.walk(n.value))
                    for t in n.targets for x in ast.walk(t) if isinstance(x, ast.Name)}
    out = []
    for loop in loops:
        for cmp in ast.walk(loop):
            if isinstance(cmp, ast.Compare) and any(isinstance(o, (ast.Gt, ast.GtE, ast.Lt, ast.LtE)) for o in cmp.ops):
                side = _budget_side(cmp, budget_names)
                if side is not None:
                    out.append((loop, cmp, _reserved(side, scope)))
                    break
    return out


def statements_after(body: list[ast.stmt], target: ast.AST) -> list[ast.stmt]:
    """The statements that run after the statement containing `target`, in the innermost statement
    list that holds it, and after each enclosing statement in the outer lists."""
    for i, st in enumerate(body):
        if st is target or any(n is target for n in ast.walk(st)):
            rest = list(body[i + 1:])
            for field in ("body", "orelse", "finalbody"):
                sub = getattr(st, field, None)
                if isinstance(sub, list) and st is not target and any(n is target for s in sub for n in ast.walk(s)):
                    return statements_after(sub, target) + rest
            for h in getattr(st, "handlers", []) or []:
                if any(n is target for s in h.body for n in ast.walk(s)):
                    return statements_after(h.body, target) + rest
            return rest
    return []
