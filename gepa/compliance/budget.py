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

The functions find these shapes in one function's nodes; `CalibBudget` (a mixin of
`review._Analysis`, at the end) runs the check over a reviewed program.
"""

from __future__ import annotations

import ast
import re

from gepa.compliance.reach import own_nodes, walk
from gepa.compliance.review_names import CALIB, OPT, name_of, short_call

_local = own_nodes  # nodes of a subtree without nested function/class bodies (cached per node)

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


class CalibBudget:
    """`code.calib-budget` over a reviewed program (mixin of `review._Analysis`): the budget loops of
    each reached function, training data read after one (there, or in a caller after the call), and
    the name-only warning where no budget loop is in sight. Uses the analysis' reach (`self.r`,
    `self.live`, `self.program`, `self._calls`), `self.callers` and `self.add`."""

    def _calib_budget(self):
        """Training data read after a training loop that stops at its full time budget (see budget.py):
        a failure with the loop, the budget test and the late read as evidence. Without such a loop in
        sight, a calibration call on training data in a script with a wallclock cap and no reserve
        only warns: the code alone cannot show whether its time was counted."""
        if self._budget_loops():
            return
        idents = set()
        for _, tree in self.program.modules:
            for n in walk(tree):
                if isinstance(n, ast.Name):
                    idents.add(n.id.lower())
                elif isinstance(n, ast.Attribute):
                    idents.add(n.attr.lower())
                elif isinstance(n, ast.Constant) and isinstance(n.value, str) and len(n.value) < 60:
                    idents.add(n.value.lower())
        if not any("wallclock" in i or "time_budget" in i for i in idents) or any("reserve" in i for i in idents):
            return
        for f in self.r.reached:
            for c in self._calls(f.node):
                nm = (name_of(c.func) or "").lower()
                if CALIB.search(nm) and any("train" in str(getattr(x, "id", getattr(x, "attr", getattr(x, "value", "")))).lower()
                                             for a in list(c.args) + [k.value for k in c.keywords] for x in ast.walk(a)):
                    self.add("code.calib-budget", f.file, c.lineno,
                             f"`{name_of(c.func)}` reads training data for calibration, and the training loop "
                             "stops at its wallclock cap without a reserve for it.", soft=True)
                    return

    def _budget_loops(self) -> bool:
        module_nodes = [n for _, t in self.program.modules for n in walk(t)]
        module_assigns = [n for n in module_nodes if isinstance(n, (ast.Assign, ast.AugAssign))]
        readers = None
        for f in self.r.reached:
            fn_nodes = [n for n in _local(f.node) if id(n) in self.live]
            scope = [n for n in fn_nodes if isinstance(n, (ast.Assign, ast.AugAssign))] + module_assigns
            for loop, cmp, reserved in budget_loops(fn_nodes, scope, self._is_train_event):
                if reserved:
                    continue
                readers = self._train_readers() if readers is None else readers
                late = self._late_train_read(f.node.body, loop, fn_nodes, readers)
                where, file = (late, f.file) if late is not None else (None, None)
                if late is None:
                    for g in self.callers.get(f.name, []):
                        body = g.node.body if g else [s for _, t in self.program.modules for s in t.body]
                        scope = [n for n in _local(g.node)] if g else module_nodes
                        for call in (c for c in (_local(g.node) if g else module_nodes)
                                     if isinstance(c, ast.Call) and name_of(c.func) == f.name):
                            late = self._late_train_read(body, call, scope, readers)
                            if late is not None:
                                where, file = late, g.file if g else self.program.modules[0][0]
                                break
                        if late is not None:
                            break
                if where is not None:
                    self.add("code.calib-budget", file, where.lineno,
                             f"`{short_call(where)}` reads training data after the training loop (line {loop.lineno} in "
                             f"`{f.name}`) stops at its full time budget (line {cmp.lineno}), with nothing reserved "
                             "for it.", ((f.file, cmp.lineno, cmp), (file, where.lineno, where)), via="The budget")
                    return True
        return False

    def _is_train_event(self, c: ast.Call) -> bool:
        if isinstance(c.func, ast.Attribute) and c.func.attr == "backward":
            return True
        return isinstance(c.func, ast.Attribute) and c.func.attr == "step" and bool(OPT.search((name_of(c.func.value) or "").lower()))

    def _train_readers(self) -> set[str]:
        """Reached functions that read training data without training on it (loaders, calibrators)."""
        direct = {}
        # Module constants naming the training files (`TRAIN = "data/fineweb_train_*.bin"`).
        glob_names = train_names([n for _, t in self.program.modules for n in t.body])
        for f in self.r.reached:
            nodes = [n for n in _local(f.node) if id(n) in self.live]
            trains = any(isinstance(n, ast.Call) and self._is_train_event(n) for n in nodes)
            reads = any(mentions_train(n, glob_names) for n in nodes if isinstance(n, (ast.Assign, ast.Call, ast.Return)))
            direct[f.name] = (reads, trains, nodes)
        readers = {k for k, (reads, trains, _) in direct.items() if reads and not trains}
        for _ in range(3):
            for k, (_, trains, nodes) in direct.items():
                if not trains and k not in readers and any(isinstance(n, ast.Call) and name_of(n.func) in readers for n in nodes):
                    readers.add(k)
        return readers

    def _late_train_read(self, body, anchor, scope, readers) -> ast.Call | None:
        names = train_names(scope)
        for st in statements_after(body, anchor):
            for n in ast.walk(st):
                if isinstance(n, ast.Call) and (id(n) in self.live or id(n) in self.r.module_live) and \
                        not self._is_train_event(n) and (name_of(n.func) in readers or
                                                         any(mentions_train(a, names) for a in list(n.args) + [k.value for k in n.keywords])):
                    return n
        return None
