"""Taint checks: mechanisms the static review finds where validation data reaches them.

Validation data is followed from its sources by `taint.py`; these checks look at what it reaches
in each reached function and in module code:
  code.paid-prefix       validation tokens handed to a save/write (not a data-preparation script
                         writing the validation split itself)
  code.rescore           a per-token minimum over scoring passes; a loop that scores the validation
                         set each pass and keeps the best pass
  code.val-cache         a count table keyed by validation tokens built outside the scoring loop
  code.unnormalised      a scored log of a count ratio read for the target alone
  code.val-in-training   training data built from validation data
  code.target-in-key     the prediction for position i written under a test on the token at i (#1420)

`TaintChecks` is a mixin of `review._Analysis`: it uses the analysis' reach (`self.r`,
`self._roots`), taint (`self._val`, `self.taint`), `self.facts`, `self._within_scoring` and `self.add`.
"""

from __future__ import annotations

import ast
import re

from gepa.compliance.reach import FuncInfo, dotted, own_nodes
from gepa.compliance.review_names import ACC, BYTE_LUT, LOSSY, assigned, name_of, short_call
from gepa.compliance.taint import RAW, VAL, bound_later, names_validation

_local = own_nodes  # nodes of a subtree without nested function/class bodies (cached per node)

_SAVE_CALLS = {"save", "savez", "savez_compressed", "dump", "write", "write_bytes", "register_buffer", "compress",
               "tofile", "serialize", "save_file", "copy_"}
_VAL_SHARD = re.compile(r"fineweb_val_")  # a validation shard's file name (written by data preparation)
_COUNTY = re.compile(r"count|cnt|table|freq|hits|ngram|cache|ctx|total|tab")


class TaintChecks:
    """Mechanisms reached by validation data in a reviewed program (mixin of `_Analysis`)."""

    def _tainted_mechanisms(self):
        scorers = {f.name for f in self.r.reached if self.facts[id(f.node)]["scores"]}
        for f, file, root, live in self._roots():
            in_scoring = f is not None and (bool(self.facts[id(f.node)]["scores"]) or self._within_scoring(f))
            nodes = [n for n in _local(root) if id(n) in live]
            for n in nodes:
                if isinstance(n, ast.Call):
                    self._paid_prefix(f, file, n)
                    self._per_token_min(f, file, n)
                    if not in_scoring:
                        self._count_table(f, file, n)
                    self._unnormalised(f, file, n)
                elif isinstance(n, ast.AugAssign) and not in_scoring and isinstance(n.target, ast.Subscript):
                    got = self._val(f, file, n.target.slice)
                    if got and not ACC.search((name_of(n.target) or "").lower()) and not bound_later(f, n, got[1]):
                        self.add("code.val-cache", file, n.lineno,
                                 f"`{name_of(n.target)}` counts entries keyed by validation tokens outside the scoring loop.", got[1])
                elif isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None:
                    targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                    names = [(name_of(t) or "").lower() for t in targets]
                    if any("train" in t and "val" not in t and "loss" not in t for t in names):
                        got = self._val(f, file, n.value, RAW)
                        if got:
                            self.add("code.val-in-training", file, n.lineno,
                                     f"`{ast.unparse(targets[0])}` (training data) is built from validation data.", got[1])
            if f is not None:
                self._best_of_passes(f, scorers)
                self._position_gate(f)

    def _paid_prefix(self, f, file, n: ast.Call):
        short = name_of(n.func) or ""
        if short not in _SAVE_CALLS:
            return
        if self._writes_val_split(f, file, n):
            return
        for a in list(n.args) + [k.value for k in n.keywords]:
            got = self._val(f, file, a, RAW)
            if got:
                self.add("code.paid-prefix", file, n.lineno,
                         f"`{short_call(n)}` stores validation tokens.", got[1])
                return

    def _writes_val_split(self, f, file, n: ast.Call) -> bool:
        """The write goes to a validation shard (`fineweb_val_000000.bin`): a data-preparation script
        producing the validation split (the CaseOps records ship `prepare_caseops_data.py`), not
        validation content stored where the submission can read it back."""
        if isinstance(n.func, ast.Attribute) and n.func.attr in ("write", "write_bytes", "tofile"):
            dest = n.args[0] if n.func.attr == "tofile" and n.args else n.func.value
        elif n.args and (dotted(n.func) or "").startswith(("np.", "numpy.")):
            dest = n.args[0]
        else:
            return False
        got = self._val(f, file, dest)
        if not got or not got[1]:
            return False
        origin = got[1][0][2]
        parts = [origin] if isinstance(origin, ast.Constant) else (origin.values if isinstance(origin, ast.JoinedStr) else
                                                                  [x for x in ast.walk(origin) if isinstance(x, ast.Constant)])
        return any(isinstance(c, ast.Constant) and isinstance(c.value, str) and _VAL_SHARD.search(c.value) for c in parts)

    def _per_token_min(self, f, file, n: ast.Call):
        d = dotted(n.func) or ""
        short = d.split(".")[-1] if d else (name_of(n.func) or "")
        args = list(n.args)
        if short in ("minimum", "fmin") and len(args) >= 2:
            tainted = [self._val(f, file, a) for a in args[:2]]
            if all(tainted) and any(LOSSY.search(ast.unparse(a).lower()) for a in args[:2]):
                self.add("code.rescore", file, n.lineno,
                         f"`{short_call(n)}` keeps a per-token minimum over several scoring passes.", tainted[0][1])
        elif short in ("min", "amin") and args and any(k.arg in ("dim", "axis") for k in n.keywords) or \
                short in ("min", "amin") and len(args) >= 2 and isinstance(args[1], ast.Constant):
            src = args[0] if d.startswith(("torch.", "np.", "numpy.")) else (n.func.value if isinstance(n.func, ast.Attribute) else None)
            if isinstance(src, ast.Call) and (name_of(src.func) or "") in ("stack", "vstack", "cat") \
                    and src.args and isinstance(src.args[0], (ast.List, ast.Tuple)) and len(src.args[0].elts) >= 2:
                got = self._val(f, file, src)
                if got and LOSSY.search(ast.unparse(src).lower()):
                    self.add("code.rescore", file, n.lineno,
                             f"`{short_call(n)}` picks the per-token minimum across passes.", got[1])

    def _count_table(self, f, file, n: ast.Call):
        d = dotted(n.func) or ""
        short = d.split(".")[-1] if d else (name_of(n.func) or "")
        key = None
        if d.endswith("add.at") and len(n.args) >= 2:
            key = n.args[1]
        elif short == "bincount" and n.args:
            key = n.args[0]
        elif short in ("index_add_", "scatter_add_", "index_put_") and len(n.args) >= 2:
            key = n.args[1] if short != "index_put_" else n.args[0]
        elif short == "Counter" and n.args:
            key = n.args[0]
        if key is None:
            return
        got = self._val(f, file, key)
        if got:
            where = f"`{f.name}`" if f else "module code"
            self.add("code.val-cache", file, n.lineno,
                     f"{where} builds a count table from validation tokens (`{short_call(n)}`) outside the "
                     "score-first loop.", got[1])

    def _unnormalised(self, f, file, n: ast.Call):
        short = (dotted(n.func) or name_of(n.func) or "").split(".")[-1]
        if short not in ("log", "log2", "log10", "log1p") or not n.args:
            return
        # The probability may be built on earlier lines: follow local names two assignments deep.
        assigns = self._assigns(f) if f is not None else {}
        exprs, seen = [n.args[0]], set()
        for _ in range(2):
            for e in list(exprs):
                for x in ast.walk(e):
                    if isinstance(x, ast.Name) and x.id in assigns and x.id not in seen:
                        seen.add(x.id)
                        exprs.append(assigns[x.id])
        for e in exprs:
            for d in ast.walk(e):
                if not (isinstance(d, ast.BinOp) and isinstance(d.op, ast.Div)):
                    continue
                for sub in ast.walk(d):
                    if isinstance(sub, ast.Subscript) and not BYTE_LUT.search((name_of(sub.value) or "").lower()) \
                            and _COUNTY.search((name_of(sub.value) or "").lower()):
                        got = self._val(f, file, sub.slice)
                        if got:
                            self.add("code.unnormalised", file, n.lineno,
                                     f"`{short_call(n)}` scores a count ratio `{name_of(sub.value)}[...]` read for "
                                     "the target without normalising over the vocabulary.", got[1])
                            return

    def _assigns(self, f: FuncInfo) -> dict[str, ast.AST]:
        out: dict[str, ast.AST] = {}
        for n in _local(f.node):
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
                out[n.targets[0].id] = n.value
        return out

    def _best_of_passes(self, f: FuncInfo, scorers: set[str]):
        """A loop that runs a scoring function each pass and keeps the best (or min) result."""
        for loop in (n for n in _local(f.node) if isinstance(n, (ast.For, ast.While)) and id(n) in self.live):
            results: set[str] = set()
            for st in ast.walk(loop):
                if isinstance(st, ast.Assign) and isinstance(st.value, ast.Call) and name_of(st.value.func) in scorers \
                        and self._scores_validation(f, st.value):
                    for t in st.targets:
                        results |= {x.id for x in ast.walk(t) if isinstance(x, ast.Name)}
            if not results:
                continue
            for st in ast.walk(loop):
                hit = None
                if isinstance(st, ast.Call) and name_of(st.func) in ("min", "max") and \
                        any(isinstance(x, ast.Name) and x.id in results for a in st.args for x in ast.walk(a)):
                    hit = st
                elif isinstance(st, ast.If) and isinstance(st.test, ast.Compare) and \
                        any(isinstance(x, ast.Name) and x.id in results for x in ast.walk(st.test)) and \
                        any("best" in t.lower() for b in st.body for t in assigned(b)):
                    hit = st
                if hit is not None:
                    self.add("code.rescore", f.file, hit.lineno,
                             f"`{f.name}` scores the validation set once per pass (loop at line {loop.lineno}) and "
                             "keeps the best pass.")
                    return

    def _scores_validation(self, f: FuncInfo, call: ast.Call) -> bool:
        """Whether a call to a scoring function scores validation data: it is handed validation
        data, or it reads the validation set by itself (a val glob, `args.val_files`). A search
        over a setting (a softmax temperature) that hands the record's own `eval_val` training
        tokens (the 2026-03-24 ternary/binary and 03-26 JEPA records) chooses nothing on
        validation data, even where the scorer's parameter is named `val_tokens`."""
        if any(self._val(f, f.file, a) for a in list(call.args) + [k.value for k in call.keywords]):
            return True
        callee = next((g for g in self.r.reached if g.name == name_of(call.func)), None)
        st = self.taint.state(callee) if callee is not None else None
        if st is None:
            return True
        local = set(st.params) | set(st.locals)

        def source(n: ast.AST) -> bool:  # a read of its own, not what its parameters carry
            if isinstance(n, ast.Attribute):
                return names_validation(n.attr)  # `args.val_files`, `self.val_tokens`
            return isinstance(n, ast.Constant) or (isinstance(n, ast.Name) and n.id not in local)
        return any(VAL in self.taint.expr(st, n) for n in _local(callee.node)
                   if isinstance(n, (ast.Attribute, ast.Constant, ast.Name)) and source(n))

    def _position_gate(self, f: FuncInfo):
        """`for i, tok in enumerate(tokens): if lut[tok]: hint[i] = best` -- the hint emitted for
        position i is gated on the token at position i, i.e. on the answer it is meant to predict
        (the word-start / within-word experts of #1420, X9). Values derived from the token (its
        byte length) may be stored at i; a gate on it may not."""
        for loop in (n for n in _local(f.node) if isinstance(n, ast.For) and id(n) in self.live):
            if not (isinstance(loop.iter, ast.Call) and name_of(loop.iter.func) == "enumerate" and loop.iter.args
                    and isinstance(loop.target, ast.Tuple) and len(loop.target.elts) == 2
                    and all(isinstance(e, ast.Name) for e in loop.target.elts)):
                continue
            got = self._val(f, f.file, loop.iter.args[0], RAW)
            if not got:
                continue
            idx, cur = loop.target.elts[0].id, loop.target.elts[1].id
            dep = {cur}
            for _ in range(3):
                for n in ast.walk(loop):
                    if isinstance(n, ast.Assign) and any(isinstance(x, ast.Name) and x.id in dep for x in ast.walk(n.value)):
                        dep |= {t.id for t in n.targets if isinstance(t, ast.Name)}
            for n in ast.walk(loop):
                if not isinstance(n, ast.If) or not any(isinstance(x, ast.Name) and x.id in dep for x in ast.walk(n.test)):
                    continue
                for st in ast.walk(n):
                    if isinstance(st, ast.Assign) and any(
                            isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Name) and t.slice.id == idx
                            for t in st.targets) and not any(isinstance(x, ast.Name) and x.id in dep for x in ast.walk(st.value)):
                        name = name_of(st.targets[0]) or "?"
                        self.add("code.target-in-key", f.file, st.lineno,
                                 f"`{f.name}` writes `{name}[{idx}]` (the prediction for position {idx}) only when "
                                 f"a test on `{cur}`, the token at position {idx}, passes (line {n.lineno}).", got[1])
                        return
