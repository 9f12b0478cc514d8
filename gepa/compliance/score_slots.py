"""Score slots: the two-pass rescore checks (#869) of the static review.

A *score slot* is an element of a container that a scoring function stores a validation loss into
(`C[i] = nll.sum()`, `C[a:b] = nll`, `losses.append(...)`) and later sums or averages into its
result. A slot written in one pass and overwritten in a later pass, after a state (a count table,
a cache, the model) was updated from validation tokens, reports a rescore: `code.rescore`.
Slot writes that are summed also count as scoring (`review._Analysis._score_events`).

`ScoreSlots` is a mixin of `review._Analysis`: it uses the analysis' reach (`self.r`, `self.live`,
`self.program`), taint (`self._val`), `self.add` and the caches `_slots`, `_raw_slots` and
`_callee_stores` that `_Analysis.__init__` sets up.
"""

from __future__ import annotations

import ast

from gepa.compliance.reach import FuncInfo, dotted, own_nodes
from gepa.compliance.review_names import LOSSY, name_of

_local = own_nodes  # nodes of a subtree without nested function/class bodies (cached per node)


class ScoreSlots:
    """Score-slot writes of a function and the rescore findings on them (mixin of `_Analysis`)."""

    def _slot_writes(self, f: FuncInfo) -> dict[str, list[ast.AST]]:
        """Score slots of `f`: container (dotted name) -> the statements that store a validation loss
        into one of its elements (`C[i] = nll.sum()`, `C[a:b] = nll`, `C[i] += ...`), for containers
        whose elements are then summed or averaged (`C.sum()`, `sum(C)`, `np.mean(C)`) or returned."""
        cache = self._slots
        if id(f.node) not in cache:
            writes = self._raw_slot_writes(f)
            cache[id(f.node)] = {box: ws for box, ws in writes.items() if self._reduction(f, box) is not None}
        return cache[id(f.node)]

    def _raw_slot_writes(self, f: FuncInfo, depth: int = 0) -> dict[str, list[ast.AST]]:
        """Every store of a validation loss into an element of a container, summed later or not; a
        call that hands the container to a helper storing into it (`rescore(chunk_nll, ...)`) is a
        store at the call."""
        memo = self._raw_slots
        if id(f.node) in memo:
            return memo[id(f.node)]
        memo[id(f.node)] = {}
        writes: dict[str, list[ast.AST]] = {}
        assigns = self._value_map(f)
        for n in _local(f.node):
            if id(n) not in self.live:
                continue
            if isinstance(n, ast.Call) and depth < 2:
                for g in self.program.funcs.get(name_of(n.func) or "", []):
                    if g not in self.r.reached or g.node is f.node:
                        continue
                    params = [a.arg for a in g.node.args.args]
                    if g.cls and params and params[0] == "self" and isinstance(n.func, ast.Attribute):
                        params = params[1:]
                    pairs = [(params[i], a) for i, a in enumerate(n.args) if i < len(params)]
                    pairs += [(k.arg, k.value) for k in n.keywords if k.arg]
                    inner = self._raw_slot_writes(g, depth + 1)
                    for q, a in pairs:
                        box = dotted(a) if isinstance(a, (ast.Name, ast.Attribute)) else None
                        if box and inner.get(q):
                            writes.setdefault(box, []).append(n)
                            if any(not isinstance(w, ast.Call) or id(w) in self._callee_stores for w in inner[q]):
                                self._callee_stores.add(id(n))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "append" \
                    and len(n.args) == 1 and isinstance(n.func.value, (ast.Name, ast.Attribute)):
                # `losses.append(nll.sum())` in a loop fills one slot per iteration.
                box = dotted(n.func.value)
                if box and self._lossy(n.args[0], assigns) and self._val(f, f.file, n.args[0]):
                    writes.setdefault(box, []).append(n)
                continue
            if isinstance(n, ast.Assign) and len(n.targets) == 1:
                tgt = n.targets[0]
            elif isinstance(n, ast.AugAssign) and isinstance(n.op, ast.Add):
                tgt = n.target
            else:
                continue
            if not (isinstance(tgt, ast.Subscript) and isinstance(tgt.value, (ast.Name, ast.Attribute))):
                continue
            box = dotted(tgt.value)
            if not box or any(dotted(x) == box for x in ast.walk(n.value) if isinstance(x, (ast.Name, ast.Attribute))):
                continue  # `C[i] = C[i] / n` transforms a slot, it does not score into it
            if self._lossy(n.value, assigns) and self._val(f, f.file, n.value):
                writes.setdefault(box, []).append(n)
        memo[id(f.node)] = writes
        return writes

    @staticmethod
    def _value_map(f: FuncInfo) -> dict[str, list[ast.AST]]:
        """Local name -> every value assigned or added to it (`x = ...`, `x += ...`)."""
        out: dict[str, list[ast.AST]] = {}
        for n in _local(f.node):
            if isinstance(n, ast.Assign):
                for t in n.targets:
                    if isinstance(t, ast.Name):
                        out.setdefault(t.id, []).append(n.value)
            elif isinstance(n, (ast.AugAssign, ast.AnnAssign)) and isinstance(n.target, ast.Name) and n.value is not None:
                out.setdefault(n.target.id, []).append(n.value)
        return out

    @staticmethod
    def _lossy(expr: ast.AST, values: dict[str, list[ast.AST]]) -> bool:
        """A loss: the expression, or the local values it is computed from (three assignments back)."""
        exprs, seen = [expr], set()
        for _ in range(3):
            for e in list(exprs):
                for x in ast.walk(e):
                    if isinstance(x, ast.Name) and x.id in values and x.id not in seen:
                        seen.add(x.id)
                        exprs += values[x.id]
        return any(LOSSY.search(ast.unparse(e).lower()) for e in exprs)

    def _reduction(self, f: FuncInfo, box: str) -> ast.AST | None:
        """Where the slots of `box` are summed or averaged into a result (or handed back whole)."""
        for n in _local(f.node):
            if id(n) not in self.live:
                continue
            if isinstance(n, ast.Call):
                short = (dotted(n.func) or name_of(n.func) or "").split(".")[-1]
                if short not in _SLOT_REDUCE:
                    continue
                if isinstance(n.func, ast.Attribute) and dotted(_slot_view(n.func.value)) == box:
                    return n
                if n.args and dotted(_slot_view(n.args[0])) == box:
                    return n
            elif isinstance(n, ast.Return) and n.value is not None and dotted(n.value) == box:
                return n
        return None

    def _slot_rescore(self, f: FuncInfo):
        """The same score slot written in two passes with a validation-dependent state update between
        them: pass 1 scores each chunk into `C[ci]` (and updates a cache/table/model from the
        validation tokens, score-first or not), a later pass scores the chunks again and overwrites
        `C[ci]`, and the result sums `C`. Every token's reported score then comes from a state that
        has already seen it (and the text after it): only the first pass may count (C4)."""
        for box, ws in self._slot_writes(f).items():
            red = self._reduction(f, box)
            for w1 in ws if len(ws) >= 2 else ():
                for w2 in ws:
                    if w2 is w1 or w2.lineno <= w1.lineno or \
                            (isinstance(w2, ast.Call) and id(w2) not in self._callee_stores):
                        continue  # an append adds a slot, it does not overwrite one
                    block, i1, i2 = _split_at(f.node.body, w1, w2)
                    if block is None or i1 >= i2 or not _looped(block[i1], w1):
                        continue
                    upd = self._state_update(f, block[i1:i2], box)
                    if upd is None:
                        continue
                    u, states = upd
                    if not self._reads_state(block[i2], states):
                        continue
                    self.add("code.rescore", f.file, w2.lineno,
                             f"`{f.name}` scores into `{box}[...]` in a first pass (line {w1.lineno}), updates "
                             f"`{sorted(states)[0]}` from validation tokens (line {u.lineno}), then scores the same "
                             f"slots again and overwrites them (line {w2.lineno}); the result sums `{box}` "
                             f"(line {red.lineno}).",
                             ((f.file, w1.lineno, w1), (f.file, u.lineno, u), (f.file, w2.lineno, w2),
                              (f.file, red.lineno, red)), via="The score slot")
                    return
            if self._pass_loop_rescore(f, box, ws, red):
                return
        self._replaced_contribution(f)

    def _reads_state(self, stmt: ast.AST, states: set[str], skip: ast.AST | None = None) -> bool:
        """`stmt` reads the updated state: the object itself, part of it, or its owner."""
        inside = {id(x) for x in ast.walk(skip)} if skip is not None else set()
        used = {dotted(x) for x in ast.walk(stmt) if isinstance(x, (ast.Name, ast.Attribute)) and id(x) not in inside}
        return any(d and (d == st or d.startswith(st + ".") or st.startswith(d + ".")) for d in used for st in states)

    def _pass_loop_rescore(self, f: FuncInfo, box: str, ws: list[ast.AST], red: ast.AST) -> bool:
        """One write of `box[i]` inside an outer loop over passes: the slot index does not depend on
        the outer loop, the state the scoring reads is updated from validation tokens inside it, and
        the slots are summed only after it, so each pass overwrites the last one's scores."""
        for w in ws:
            loops = [x for x in ast.walk(f.node) if isinstance(x, (ast.For, ast.AsyncFor, ast.While))
                     and x is not w and any(y is w for y in ast.walk(x))]
            for outer in loops:
                if any(y is red for y in ast.walk(outer)):
                    continue
                if isinstance(outer, (ast.For, ast.AsyncFor)) and self._val(f, f.file, outer.iter):
                    continue  # a loop over documents or batches of validation data, not over passes
                dep = {x.id for x in ast.walk(outer.target) if isinstance(x, ast.Name)} \
                    if isinstance(outer, (ast.For, ast.AsyncFor)) else set()
                for _ in range(3):
                    for n in ast.walk(outer):
                        src = n.value if isinstance(n, (ast.Assign, ast.AugAssign)) else \
                            (n.iter if isinstance(n, (ast.For, ast.AsyncFor)) and n is not outer else None)
                        if src is not None and any(isinstance(x, ast.Name) and x.id in dep for x in ast.walk(src)):
                            tg = n.targets if isinstance(n, ast.Assign) else [n.target]
                            dep |= {x.id for t in tg for x in ast.walk(t) if isinstance(x, ast.Name)}
                if isinstance(w, ast.Call):
                    break
                target = w.targets[0] if isinstance(w, ast.Assign) else w.target
                if any(isinstance(x, ast.Name) and x.id in dep for x in ast.walk(target.slice)):
                    continue
                upd = self._state_update(f, [outer], box)
                if upd is None or not self._reads_state(outer, upd[1], skip=upd[0]):
                    continue
                u, states = upd
                self.add("code.rescore", f.file, w.lineno,
                         f"`{f.name}` writes `{box}[...]` (line {w.lineno}) on every pass of the loop at line "
                         f"{outer.lineno}, which also updates `{sorted(states)[0]}` from validation tokens (line "
                         f"{u.lineno}); the slots are summed only after the last pass (line {red.lineno}), so "
                         "the reported score is the rescored one.",
                         ((f.file, outer.lineno, outer), (f.file, u.lineno, u), (f.file, w.lineno, w),
                          (f.file, red.lineno, red)), via="The score slot")
                return True
        return False

    def _replaced_contribution(self, f: FuncInfo):
        """`acc -= C[ci]; acc += new_loss` in a later pass: the first-pass score stored in slot `C[ci]`
        is taken out of the reported sum and replaced by a rescore after a validation-dependent update."""
        raw = self._raw_slot_writes(f)
        if not raw:
            return
        assigns = self._value_map(f)
        subs = [n for n in _local(f.node) if id(n) in self.live and isinstance(n, ast.AugAssign)
                and isinstance(n.op, ast.Sub)]
        for w2 in subs:
            acc = dotted(w2.target)
            for box, ws in raw.items():
                if not acc or not any(isinstance(x, ast.Subscript) and dotted(x.value) == box for x in ast.walk(w2.value)):
                    continue
                for w1 in ws:
                    block, i1, i2 = _split_at(f.node.body, w1, w2)
                    if block is None or i1 >= i2 or not _looped(block[i1], w1):
                        continue
                    add = next((n for n in ast.walk(block[i2]) if isinstance(n, ast.AugAssign) and isinstance(n.op, ast.Add)
                                and dotted(n.target) == acc and self._lossy(n.value, assigns)
                                and self._val(f, f.file, n.value)), None)
                    upd = self._state_update(f, block[i1:i2], box) if add is not None else None
                    if upd is None or not self._reads_state(block[i2], upd[1]):
                        continue
                    u, states = upd
                    self.add("code.rescore", f.file, w2.lineno,
                             f"`{f.name}` stores each chunk's first-pass score in `{box}[...]` (line {w1.lineno}), "
                             f"updates `{sorted(states)[0]}` from validation tokens (line {u.lineno}), then takes "
                             f"that score out of `{acc}` (line {w2.lineno}) and adds a rescore instead (line "
                             f"{add.lineno}).",
                             ((f.file, w1.lineno, w1), (f.file, u.lineno, u), (f.file, w2.lineno, w2),
                              (f.file, add.lineno, add)), via="The score slot")
                    return

    def _state_update(self, f: FuncInfo, stmts: list[ast.stmt], box: str) -> tuple[ast.AST, set[str]] | None:
        """A statement in `stmts` that updates state from validation data: a count-table update keyed by
        validation tokens (`np.add.at(T, key, 1)`, `T[key] += 1`, `T += np.bincount(key)`), or a call,
        given validation data, to a function that mutates its object or arguments
        (`cache.update(val_np, lo, hi)`). Returns it and the names of the state it changes."""
        for st in stmts:
            for n in ast.walk(st):
                if id(n) not in self.live:
                    continue
                if isinstance(n, ast.AugAssign):
                    counted = any(isinstance(x, ast.Call) and name_of(x.func) == "bincount" for x in ast.walk(n.value))
                    base = dotted(n.target.value if isinstance(n.target, ast.Subscript) else n.target)
                    keyed = isinstance(n.target, ast.Subscript) and self._val(f, f.file, n.target.slice)
                    if base and base != box and (keyed or (counted and self._val(f, f.file, n.value))):
                        return n, {base}
                    continue
                if not isinstance(n, ast.Call):
                    continue
                d = dotted(n.func) or ""
                short = d.split(".")[-1] if d else (name_of(n.func) or "")
                if (d.endswith("add.at") and len(n.args) >= 2) or (short in ("index_add_", "scatter_add_") and len(n.args) >= 2):
                    table = n.args[0] if d.endswith("add.at") else n.func.value
                    base = dotted(table)
                    if base and base != box and self._val(f, f.file, n.args[1]):
                        return n, {base}
                    continue
                args = list(n.args) + [k.value for k in n.keywords]
                if not any(self._val(f, f.file, a) for a in args):
                    continue
                for g in self.program.funcs.get(name_of(n.func) or "", []):
                    if g not in self.r.reached or not self._mutates(g):
                        continue
                    if isinstance(n.func, ast.Attribute) and g.cls:
                        states = {dotted(n.func.value)} - {None}
                    else:
                        states = {dotted(a) for a in args if isinstance(a, (ast.Name, ast.Attribute))
                                  and not self._val(f, f.file, a)} - {None}
                    if states and box not in states:
                        return n, states
        return None

    @staticmethod
    def _mutates(g: FuncInfo) -> bool:
        """`g` changes state its caller sees: an item or attribute of `self` or of a parameter, or a
        count table it is handed (`self.rows[k] += 1`, `np.add.at(self.full, key, 1)`, `t.index_add_`)."""
        params = {a.arg for a in g.node.args.args}

        def rooted(e):
            while isinstance(e, (ast.Attribute, ast.Subscript)):
                e = e.value
            return isinstance(e, ast.Name) and e.id in params

        for n in _local(g.node):
            if isinstance(n, ast.AugAssign) and rooted(n.target) and not isinstance(n.target, ast.Name):
                return True
            if isinstance(n, ast.Assign) and any(isinstance(t, ast.Subscript) and rooted(t) for t in n.targets):
                return True
            if isinstance(n, ast.Call):
                d = dotted(n.func) or ""
                if d.endswith("add.at") and n.args and rooted(n.args[0]):
                    return True
                if isinstance(n.func, ast.Attribute) and n.func.attr in ("index_add_", "scatter_add_", "add_", "index_put_") \
                        and rooted(n.func.value):
                    return True
        return False


_SLOT_REDUCE = {"sum", "mean", "nansum", "nanmean", "fsum", "average"}


def _slot_view(e: ast.AST) -> ast.AST:
    """`C.values()`, `C.double()`, `C.cpu().numpy()` are the slots of `C`."""
    for _ in range(8):
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and \
                e.func.attr in ("values", "tolist", "cpu", "numpy", "float", "double", "detach", "to", "clone"):
            e = e.func.value
        elif isinstance(e, ast.Subscript) and (isinstance(e.slice, ast.Slice) or isinstance(e.slice, ast.Tuple)
                                               and any(isinstance(x, ast.Slice) for x in e.slice.elts)):
            e = e.value  # `C[:n]`, `C[:, 0]`
        elif isinstance(e, ast.Call) and (name_of(e.func) or "") in ("asarray", "array", "tensor", "stack", "cat") \
                and e.args:
            e = e.args[0]  # `np.asarray(C)`, `torch.tensor(C)`
        else:
            break
    return e


def _split_at(body: list[ast.stmt], a: ast.AST, b: ast.AST) -> tuple[list[ast.stmt] | None, int, int]:
    """The innermost statement list holding `a` and `b` in two different statements, and their indices."""
    def index(stmts, node):
        return next((i for i, st in enumerate(stmts) if st is node or any(x is node for x in ast.walk(st))), None)

    while True:
        i, j = index(body, a), index(body, b)
        if i is None or j is None:
            return None, 0, 0
        if i != j:
            return body, i, j
        st = body[i]
        subs = [getattr(st, k) for k in ("body", "orelse", "finalbody") if isinstance(getattr(st, k, None), list)]
        subs += [h.body for h in getattr(st, "handlers", []) or []]
        nxt = next((sub for sub in subs if index(sub, a) is not None and index(sub, b) is not None), None)
        if nxt is None or isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return None, 0, 0
        body = nxt


def _looped(st: ast.stmt, node: ast.AST) -> bool:
    """`node` runs inside a loop within statement `st` (a pass over chunks, windows or documents)."""
    return any(isinstance(x, (ast.For, ast.AsyncFor, ast.While)) and any(y is node for y in ast.walk(x))
               for x in ast.walk(st))
