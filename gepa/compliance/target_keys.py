"""Target keys: the `code.target-in-key` chain of the static review.

A lookup or gate at scoring time whose key is built from the target token makes the probability
depend on the answer. The target is found by what scoring does with it (the label of
`cross_entropy`, the index of a `gather`, target positions in the token stream: `target_flow.py`),
followed through moves and slices, and into helpers that are handed it: a helper that hashes it
(`ctx ^ (tgt * P)`) and returns the hash makes the caller's table read target-keyed, three calls
deep. Findings carry the evidence from where the scorer binds the target to where it scores what
the lookup returned. A loss edited where stored content equals the target is a paid prefix
(`code.paid-prefix`), found with the same target names.

`TargetKeys` is a mixin of `review._Analysis`: it uses the analysis' reach (`self.r`, `self.live`,
`self.program`, `self._calls`), `self.val_extra`, `self.facts`, `self.add` and the memos
`_tk_done` and `_rk_memo` that `_Analysis.__init__` sets up.
"""

from __future__ import annotations

import ast
import re

from gepa.compliance.reach import FuncInfo, own_nodes
from gepa.compliance.review_names import BYTE_LUT, name_of
from gepa.compliance.target_flow import is_position_read, stored_match, target_positions

_local = own_nodes  # nodes of a subtree without nested function/class bodies (cached per node)

# Target names, with the suffixes real scripts add for the same value in another form
# (`tgt_np`, `target_ids`, `y_batch`, `labels_u64`).
_TGT = re.compile(r"^(tgts?|targets?|y|ys|yb|ybatch|labels?|gold|next_toks?|next_tokens?|true_toks?)"
                  r"(_(np|ids?|arr|array|t|tok|toks|tokens?|b|batch|flat|cpu|gpu|dev|u64|i64|int|long))*$")


class TargetKeys:
    """Target names of a function and the target-keyed lookups and gates on them (mixin of `_Analysis`)."""

    def _targets(self, f: FuncInfo) -> set[str]:
        """Names holding the target token in `f`, found by what the scoring does with them: the
        label of `cross_entropy`/`nll_loss`, the index of a `gather` on log-probabilities, the last
        index of `logp[..., y]`; then names assigned by moving those values (`.long()`, slices,
        arithmetic), whatever they are called."""
        names: set[str] = set()
        for n in _local(f.node):
            if id(n) not in self.live:
                continue
            if isinstance(n, ast.Call):
                short = name_of(n.func) or ""
                arg = None
                if short in ("cross_entropy", "nll_loss") and len(n.args) >= 2:
                    arg = n.args[1]
                elif short in ("gather", "take_along_dim", "take_along_axis") and len(n.args) >= 2:
                    arg = n.args[1] if short == "gather" else n.args[1]
                arg = next((k.value for k in n.keywords if k.arg in ("target", "index", "indices")), arg)
                if arg is not None:
                    # `toks[lo:hi]`: the bounds of a slice are positions, not the target.
                    bounds = {x.id for sl in ast.walk(arg) if isinstance(sl, ast.Slice)
                              for x in ast.walk(sl) if isinstance(x, ast.Name)}
                    names |= {x.id for x in ast.walk(arg) if isinstance(x, ast.Name)} - bounds
            elif isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load) and isinstance(n.slice, ast.Tuple) and \
                    re.search(r"logp|log_prob|logprob|lprob|probs|logits|log_softmax", (name_of(n.value) or "").lower()):
                names |= {x.id for x in ast.walk(n.slice.elts[-1]) if isinstance(x, ast.Name)}
        names = {x for x in names if not re.search(r"^(i|j|k|n|b|t|idx|pos|arange|range|torch|np|dim)$", x)}
        for _ in range(3):
            grew = False
            for n in _local(f.node):
                if isinstance(n, ast.Assign) and _moves(n.value) and \
                        any(isinstance(x, ast.Name) and x.id in names for x in ast.walk(n.value)):
                    for t in n.targets:
                        for x in ast.walk(t):
                            if isinstance(x, ast.Name) and x.id not in names:
                                names.add(x.id)
                                grew = True
            if not grew:
                break
        return names

    def _target_names(self, nodes: list[ast.AST], tn0: frozenset, raw: frozenset, pos: frozenset) -> frozenset:
        # `nxt = stream[where]`: a copy of the target read at its positions is the target too.
        tn = set(tn0) | {t.id for n in nodes if isinstance(n, ast.Assign) and _moves(n.value)
                         and is_position_read(n.value, raw, pos) for t in n.targets if isinstance(t, ast.Name)}
        # A parameter handed the target keeps being it when sliced or moved (`tgt = y_row[:n]`).
        for _ in range(2):
            tn |= {t.id for n in nodes if isinstance(n, ast.Assign) and _moves(n.value)
                   and any(isinstance(x, ast.Name) and x.id in tn for x in ast.walk(n.value))
                   for t in n.targets if isinstance(t, ast.Name)}
        return frozenset(tn)

    def _target_key(self, f: FuncInfo, extra: frozenset = frozenset(), depth: int = 0, pos_in: frozenset = frozenset(),
                    via: tuple = (), tail: tuple = ()):
        """`via`: evidence steps from the scorer down to this helper (where the target is bound, each
        call that hands it on); `tail`: the step where the scorer scores what the lookup returned."""
        raw = frozenset(self.val_extra.get(id(f.node), ()))
        nodes = [n for n in _local(f.node) if id(n) in self.live]
        tn0 = frozenset(self._targets(f)) | extra
        pos = frozenset(target_positions(nodes, set(tn0), set(raw), pos_in))
        tn = self._target_names(nodes, tn0, raw, pos)
        keys, key_steps = self._key_names(f.file, nodes, tn, raw, pos)
        self._stored_match(f, nodes, tn, raw, pos)
        lead = via or self._pos_chain(f, nodes, pos)
        for n in nodes:
            if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load):
                idx = n.slice
                used = [x.id for x in ast.walk(idx) if isinstance(x, ast.Name) and x.id in keys]
                if _hashy_with_target(idx, tn, raw, pos) or used:
                    chain = key_steps.get(used[0], ()) + ((f.file, n.lineno, n),) if used else ()
                    self.add("code.target-in-key", f.file, n.lineno,
                             f"`{f.name}` reads `{name_of(n.value)}` with a key built from the target token.",
                             _dedup_steps(lead + chain + tail), via="The target")
                    return
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("get", "__getitem__", "setdefault") \
                    and n.args and not BYTE_LUT.search((name_of(n.func.value) or "").lower()):
                key = n.args[0]
                if _hashy_with_target(key, tn, raw, pos) or any(isinstance(x, ast.Name) and x.id in keys for x in ast.walk(key)) or \
                        (isinstance(key, ast.Tuple) and any(_is_target(e, tn, raw, pos) for e in key.elts)):
                    self.add("code.target-in-key", f.file, n.lineno,
                             f"`{f.name}` looks up `{name_of(n.func.value)}` with a key that includes the target token.",
                             _dedup_steps(via + ((f.file, n.lineno, n),) + tail) if via else (), via="The target")
                    return
            tests = []
            if isinstance(n, (ast.If, ast.IfExp, ast.While)):
                tests = [n.test]
            elif isinstance(n, ast.Call) and (name_of(n.func) or "") == "where" and n.args:
                tests = [n.args[0]]
            for t in tests:
                for s in ast.walk(t):
                    if isinstance(s, ast.Subscript) and _is_target(s.slice, tn, raw) and not BYTE_LUT.search((name_of(s.value) or "").lower()):
                        self.add("code.target-in-key", f.file, s.lineno,
                                 f"`{f.name}` gates on `{name_of(s.value)}[...]` of the target token.")
                        return
        if depth >= 3 or not (tn or pos):
            return
        # Helpers handed the target or its positions (vectorised hash/lookup functions, any name),
        # followed through helpers that hand it on (lookup -> key builder -> hash), 3 calls deep.
        for c in self._calls(f.node):
            for g in self.program.funcs.get(name_of(c.func) or "", []):
                if g not in self.r.reached or g.node is f.node:
                    continue
                hit, hit_pos = self._bound(g, c, tn, pos)
                if (hit or hit_pos) and (id(g.node), hit, hit_pos) not in self._tk_done:
                    self._tk_done.add((id(g.node), hit, hit_pos))
                    step = ((f.file, c.lineno, c),)
                    if depth == 0:
                        self._target_key(g, hit, 1, hit_pos, self._origin(f, nodes, c, tn, pos) + step,
                                         self._score_step(f, nodes, c))
                    else:
                        self._target_key(g, hit, depth + 1, hit_pos, via + step, tail)

    def _key_names(self, file: str, nodes: list[ast.AST], tn: frozenset, raw: frozenset,
                   pos: frozenset, depth: int = 0) -> tuple[set[str], dict[str, tuple]]:
        """Names of one function bound to a hash that mixes in the target: built here (`k = ctx ^
        (tgt * P)`, `h ^= tgt * P`), returned by a helper chain (`full = keys(toks, at, tgt).astype(...)`,
        `_, full = _ngh(...)`), or moved from such a name. Returns the names and, per name, the evidence
        steps (the helper calls and the line that mixes the target in)."""
        keys: set[str] = set()
        steps: dict[str, tuple] = {}
        for _ in range(2):
            for n in nodes:
                if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name) and n.target.id not in keys and \
                        isinstance(n.op, (ast.BitXor, ast.Add)) and \
                        (_hashy_with_target(n.value, tn, raw, pos) or
                         (isinstance(n.op, ast.BitXor) and _is_target(n.value, tn, raw, pos))):
                    keys.add(n.target.id)
                    steps[n.target.id] = ((file, n.lineno, n),)
                if not isinstance(n, ast.Assign):
                    continue
                names = [t.id for t in n.targets if isinstance(t, ast.Name)]
                if _hashy_with_target(n.value, tn, raw, pos):
                    for t in names:
                        steps.setdefault(t, ((file, n.lineno, n),))
                    keys |= set(names)
                    continue
                moved = next((x.id for x in ast.walk(n.value) if isinstance(x, ast.Name) and x.id in keys), None)
                if moved is not None and _moves(n.value):
                    for t in names:
                        steps.setdefault(t, steps.get(moved, ()))
                    keys |= set(names)
                    continue
                idx, st = self._key_call(file, n.value, tn, raw, pos, depth)
                if not idx:
                    continue
                got: set[str] = set()
                for t in n.targets:
                    if isinstance(t, ast.Tuple):
                        got |= {t.elts[i].id for i in idx if 0 <= i < len(t.elts) and isinstance(t.elts[i], ast.Name)}
                    elif isinstance(t, ast.Name) and -1 in idx:
                        got.add(t.id)
                for t in got:
                    steps.setdefault(t, st)
                keys |= got
        return keys, steps

    def _key_call(self, file: str, value: ast.AST, tn: frozenset, raw: frozenset, pos: frozenset,
                  depth: int = 0) -> tuple[set[int], tuple]:
        """`value` is (after re-encoding or masking: `.astype(...)`, `& mask`) a call to a helper that
        returns a hash it mixed the target into, given these arguments. The target may reach the
        helper by name, or as a token array plus target positions (`_ngh(val_np, where)`), and the
        helper may get the hash from a further helper. Returns the indices of the returned tuple that
        carry it (-1: the whole value) and the evidence steps (each call, then the hash line)."""
        core = _strip_key_moves(value)
        if not isinstance(core, ast.Call) or depth > 3:
            return set(), ()
        for g in self.program.funcs.get(name_of(core.func) or "", []):
            if g not in self.r.reached:
                continue
            # Even with nothing bound, a helper may read the target itself (`tgt = arr[pos]`).
            hit, hit_pos = self._bound(g, core, tn, pos)
            idx, steps = self._returned_key(g, hit, hit_pos, depth + 1)
            if idx:
                return idx, ((file, core.lineno, core),) + steps
        return set(), ()

    def _returned_key(self, g: FuncInfo, hit: frozenset, hit_pos: frozenset, depth: int) -> tuple[set[int], tuple]:
        memo = self._rk_memo
        k = (id(g.node), hit, hit_pos)
        if k in memo:
            return memo[k]
        memo[k] = (set(), ())  # a recursive helper returns nothing new while it is being looked at
        nodes = list(_local(g.node))
        g_raw = frozenset(self.val_extra.get(id(g.node), ())) if hit_pos else frozenset()
        g_pos = frozenset(target_positions(nodes, set(hit), set(g_raw), hit_pos)) if hit_pos else frozenset()
        tn = self._target_names(nodes, hit, g_raw, g_pos)
        inner, inner_steps = self._key_names(g.file, nodes, tn, g_raw, g_pos, depth)
        out: set[int] = set()
        steps: tuple = ()
        for r in nodes:
            if not (isinstance(r, ast.Return) and r.value is not None):
                continue
            is_tuple = isinstance(r.value, ast.Tuple)
            elts = r.value.elts if is_tuple else [r.value]
            for i, e in enumerate(elts):
                st: tuple | None = None
                if _hashy_with_target(e, tn, g_raw, g_pos):
                    st = ((g.file, r.lineno, r),)
                else:
                    used = next((x.id for x in ast.walk(e) if isinstance(x, ast.Name) and x.id in inner), None)
                    if used is not None and _moves(e):
                        st = inner_steps.get(used, ())
                    else:
                        idx, sub = self._key_call(g.file, e, tn, g_raw, g_pos, depth)
                        if -1 in idx:
                            st = sub
                if st is not None:
                    out.add(i if is_tuple else -1)
                    steps = steps or st
        memo[k] = (out, steps)
        return out, steps

    def _origin(self, f: FuncInfo, nodes: list[ast.AST], c: ast.Call, tn: frozenset, pos: frozenset) -> tuple:
        """The line in the scorer that binds the target (or its positions) handed to call `c`."""
        names = {x.id for a in list(c.args) + [k.value for k in c.keywords] for x in ast.walk(a)
                 if isinstance(x, ast.Name) and (x.id in tn or x.id in pos)}
        for n in nodes:
            if isinstance(n, ast.Assign) and n.lineno <= c.lineno and \
                    any(isinstance(t, ast.Name) and t.id in names for t in n.targets):
                return ((f.file, n.lineno, n),)
        return ()

    def _score_step(self, f: FuncInfo, nodes: list[ast.AST], c: ast.Call) -> tuple:
        """The score event in `f` that the result of call `c` flows into (through local assignments)."""
        holder = next((n for n in nodes if isinstance(n, ast.Assign) and any(x is c for x in ast.walk(n.value))), None)
        if holder is None:
            return ()
        names = {x.id for t in holder.targets for x in ast.walk(t) if isinstance(x, ast.Name)}
        scores = {id(s) for s in self.facts[id(f.node)]["scores"]}
        for n in sorted((n for n in nodes if isinstance(n, (ast.Assign, ast.AugAssign)) and n.lineno > holder.lineno),
                        key=lambda n: n.lineno):
            if not any(isinstance(x, ast.Name) and x.id in names for x in ast.walk(n.value)):
                continue
            if id(n) in scores or any(id(x) in scores for x in ast.walk(n)):
                return ((f.file, n.lineno, n),)
            if isinstance(n, ast.Assign):
                names |= {x.id for t in n.targets for x in ast.walk(t) if isinstance(x, ast.Name)}
        return ()

    @staticmethod
    def _bound(g: FuncInfo, c: ast.Call, tn: frozenset, pos: frozenset) -> tuple[frozenset, frozenset]:
        """Parameters of `g` that call `c` binds to the target (`tn`) and to target positions (`pos`,
        passed bare or masked: `where`, `where[ok]`)."""
        params = [a.arg for a in g.node.args.args]
        if g.cls and params and params[0] == "self" and isinstance(c.func, ast.Attribute):
            params = params[1:]
        pairs = [(params[i], a) for i, a in enumerate(c.args) if i < len(params)]
        pairs += [(k.arg, k.value) for k in c.keywords if k.arg]
        # The argument is the target when it only moves or masks it (`tgt`, `tgt[ok]`, `y.cpu().numpy()`);
        # a value computed from it by another call (`np.arange(lo, hi)`, `ctx(toks, at)`) is not.
        hit = frozenset(p for p, a in pairs if _moves(a) and any(isinstance(x, ast.Name) and x.id in tn for x in ast.walk(a)))

        def positional(a):
            return (isinstance(a, ast.Name) and a.id in pos) or \
                (isinstance(a, ast.Subscript) and isinstance(a.value, ast.Name) and a.value.id in pos)
        return hit, frozenset(p for p, a in pairs if positional(a))

    def _pos_chain(self, f: FuncInfo, nodes: list[ast.AST], pos: frozenset) -> tuple:
        """The line that builds the target positions, as the first evidence step."""
        for n in nodes:
            if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id in pos for t in n.targets):
                return ((f.file, n.lineno, n),)
        return ()

    def _stored_match(self, f: FuncInfo, nodes: list[ast.AST], tn: frozenset, raw: frozenset, pos: frozenset):
        """A loss zeroed (or scaled) where stored content equals the target: a paid prefix read at
        scoring time, whatever the stored file is called (see target_flow.stored_match)."""
        if not (tn or pos):
            return
        got = stored_match(nodes, lambda e: _is_target(e, tn, raw, pos))
        if got:
            cmp, edit = got
            self.add("code.paid-prefix", f.file, edit.lineno,
                     f"`{f.name}` compares stored content with the target token (line {cmp.lineno}) and edits the "
                     "loss where they match, so text known in advance is scored as free.",
                     ((f.file, cmp.lineno, cmp), (f.file, edit.lineno, edit)))


def _moves(value: ast.AST) -> bool:
    """An expression that only moves or re-encodes a value (no model call, no loss)."""
    for n in ast.walk(value):
        if isinstance(n, ast.Call):
            short = name_of(n.func) or ""
            if short not in _MOVE_CALLS:
                return False
    return True


_MOVE_CALLS = {"long", "int", "to", "view", "reshape", "flatten", "numpy", "cpu", "cuda", "contiguous", "astype",
               "asarray", "array", "from_numpy", "tensor", "as_tensor", "unsqueeze", "squeeze", "clone", "item",
               "tolist", "int64", "uint64", "detach", "ravel", "bitwise_xor", "remainder", "fmod"}


def _is_target(node: ast.AST, extra: frozenset = frozenset(), raw: frozenset = frozenset(),
               pos: frozenset = frozenset()) -> bool:
    """`extra`: names found to hold the target; `raw`: names holding validation tokens, whose
    element one past the current position (`seq[i + 1]`), or at a target position (`seq[where]`,
    `pos`: see target_flow), is the target."""
    if is_position_read(node, raw, pos):
        return True
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and (_TGT.match(n.id) or n.id in extra):
            return True
        if isinstance(n, ast.Subscript) and (re.search(r"tok|val", (name_of(n.value) or "").lower()) or name_of(n.value) in raw):
            s = n.slice
            if isinstance(s, ast.BinOp) and isinstance(s.op, ast.Add) and isinstance(s.right, ast.Constant) and s.right.value == 1:
                return True
    return False


def _hashy_with_target(node: ast.AST, extra: frozenset = frozenset(), raw: frozenset = frozenset(),
                       pos: frozenset = frozenset()) -> bool:
    """An expression that hashes/mixes values and includes the target token: `ctx ^ (tgt * P)`."""
    for n in ast.walk(node):
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.BitXor, ast.Mult, ast.LShift)):
            other = [n.left, n.right]
            if any(_is_target(o, extra, raw, pos) for o in other):
                if isinstance(n.op, ast.BitXor) or isinstance(n.op, ast.LShift):
                    return True
                if any(isinstance(o, ast.Constant) and isinstance(o.value, int) and o.value > 1000 for o in other) \
                        or any(re.search(r"prime|mult|hash|mix", (name_of(o) or "").lower()) for o in other):
                    return True
    return False


def _strip_key_moves(node: ast.AST) -> ast.AST:
    """The call under re-encodings and masks of a hash: `f(...).astype(np.int64)`, `f(...) & mask`,
    `np.int64(f(...))`, `(f(...) % B).long()`."""
    for _ in range(8):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _MOVE_CALLS:
            node = node.func.value
        elif isinstance(node, ast.Call) and (name_of(node.func) or "") in _MOVE_CALLS and len(node.args) == 1:
            node = node.args[0]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.Mod)):
            node = node.left
        else:
            break
    return node


def _dedup_steps(steps: tuple) -> tuple:
    seen, out = set(), []
    for st in steps:
        key = (st[0], st[1])
        if key not in seen:
            seen.add(key)
            out.append(st)
    return tuple(out)
