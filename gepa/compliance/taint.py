"""Taint tracking of validation data through a submission, from where it is read, not from names.

Sources are reads of the validation files: a string naming them (`fineweb_val_*.bin`, `val_*`),
a config field that holds their location (`val_files`, `val_pattern`, `val_path`), and whatever
loads through those (glob, shard loaders, `np.memmap`, `np.fromfile`, `np.load`, `torch.load`,
`open`). Taint then follows assignments, slices and subscripts, containers (`append`, item
stores, tuples), numpy/torch conversions (`.to`, `torch.from_numpy`, `.numpy()`...), for-loop
targets, `with ... as` targets, function arguments and returns, across functions and across the
modules of the bundle.

Two levels: RAW is the validation tokens themselves (or a loader/object holding them); DERIVED
is anything computed from them (logits, losses, hashes, counts). A paid prefix needs RAW; a
training update or a calibration needs either.

Functions are summarised once, context-insensitively: each parameter gets a symbolic label
(`p:name`), so a function's summary says which parameters reach its return value. A call then
substitutes the taint of its arguments, which keeps a shared helper (`load_data_shard`) from
tainting the training stream just because it also loads the validation one. The taint of a
parameter as seen by the detectors is the join over the call sites that pass it.

Every taint carries a short chain of `file:line` steps that the findings quote as evidence.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from gepa.compliance.budget import mentions_train, train_names
from gepa.compliance.reach import FuncInfo, Program, dotted, own_nodes

RAW, DERIVED = 2, 1
VAL = "val"
_MAX_CHAIN = 6
_ROUNDS = 6

# A string that names the validation split on disk.
_VAL_STR = re.compile(r"fineweb_val|(^|[/_*])val_\*|(^|/)val[_-]?\d*\.(bin|npy|pt|npz)$|_val_\d+\.bin|(^|/)val/")
# Config fields that hold where validation data lives (their value is a path, the source itself).
_VAL_LOC = re.compile(r"^(val|valid|validation)_(files?|pattern|path|paths|glob|shards?|dir|bin|data_path|files_pattern|shard_pattern)$"
                      r"|^(val_data_pattern|val_glob_pattern|eval_files|eval_pattern)$")
# Names that conventionally hold validation tokens (kept as a secondary source: excerpts and
# helpers receive val data under these names without the load being visible).
VAL_NAME = re.compile(r"(^|_)(val|valid|validation)_(tokens?|toks|ids|seqs?|stream|np|arr|buf|docs?)(_|$)|^val_data$")


def names_validation(ident: str) -> bool:
    """A field or variable name that holds validation data or says where it lives."""
    return bool(_VAL_LOC.match(ident.lower()) or VAL_NAME.search(ident.lower()))


# Calls and methods that move data without computing on it: the value stays RAW.
_KEEP_CALLS = {"asarray", "array", "tensor", "as_tensor", "from_numpy", "frombuffer", "fromfile", "memmap", "load",
               "cat", "concatenate", "stack", "hstack", "vstack", "list", "tuple", "sorted", "Path", "open", "glob",
               "iglob", "load_data_shard", "_load_data_shard", "load_shard", "ascontiguousarray", "copy", "deepcopy",
               "flatten", "ravel", "reshape", "pad", "split", "chunk", "iter", "zip", "enumerate", "reversed",
               "contiguous", "to", "cuda", "cpu", "long", "int", "float", "view", "numpy", "tolist", "clone",
               "astype", "unfold", "narrow", "pin_memory", "read", "read_bytes", "read_text", "detach", "squeeze",
               "unsqueeze", "T", "index_select", "roll", "permute", "transpose", "expand", "repeat", "get", "pop",
               "next", "next_batch", "take", "items", "values", "keys", "__getitem__", "fspath", "join", "str",
               "tobytes", "view_as", "type", "bfloat16", "half", "short", "char", "uint8", "int64", "int32",
               # Lossless encodings keep the content: a compressed blob of val tokens is val tokens.
               "compress", "decompress", "b85encode", "b64encode", "b85decode", "b64decode", "encode", "decode",
               "pack", "dumps", "state_dict"}
# Calls whose result says nothing about the data's content.
# (bare names: `log(...)` is a logger, `np.log(...)` is maths)
_SHAPE_FUNCS = {"len", "range", "isinstance", "print", "log", "log0", "logger", "type", "id", "hash_str"}
_SHAPE_METHODS = {"numel", "size", "dim", "nelement", "exists", "is_file", "is_dir", "stat", "getsize", "basename",
                  "dirname", "info", "warning", "debug", "write_text_log"}
_SHAPE_ATTRS = {"shape", "dtype", "device", "ndim", "nbytes", "itemsize", "name", "stem", "suffix", "is_cuda"}
_CONTAINER_ADD = {"append", "extend", "insert", "add", "update", "put", "put_nowait", "copy_", "appendleft", "setdefault"}


def _short(node: ast.AST, limit: int = 60) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # noqa: BLE001 - unparse of odd trees
        return type(node).__name__
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# A taint value: label -> (level, chain). Labels are VAL or "p:<param>".
TV = dict


def join(a: TV, b: TV) -> TV:
    if not b:
        return a
    if not a:
        return dict(b)
    out = dict(a)
    for k, v in b.items():
        if k not in out or v[0] > out[k][0]:
            out[k] = v
    return out


def demote(tv: TV) -> TV:
    return {k: (min(v[0], DERIVED), v[1]) for k, v in tv.items()}


def step(tv: TV, where: tuple) -> TV:
    """Append a step (file, line, node) to every chain; a step on the same line replaces the
    previous one. Steps are rendered to text only when a finding quotes them (`render`)."""
    out = {}
    loc = where[:2]
    for k, (lvl, chain) in tv.items():
        if chain and chain[-1][:2] == loc:
            chain = chain[:-1]
        out[k] = (lvl, (chain + (where,))[-_MAX_CHAIN:])
    return out


def render(chain: tuple) -> tuple[str, ...]:
    """`file:line code` strings for a chain of (file, line, node) steps."""
    return tuple(f"{f}:{line} {_short(node)}" for f, line, node in chain)


@dataclass
class _FuncState:
    info: FuncInfo | None            # None: module-level code of `file`
    file: str
    params: list[str] = field(default_factory=list)
    locals: dict[str, TV] = field(default_factory=dict)
    ret: TV = field(default_factory=dict)
    stmts: list[ast.AST] = field(default_factory=list)
    cls: str | None = None


class Taint:
    """Run the analysis on `program`; then query `of(func, expr)` or `names(func, level)`."""

    def __init__(self, program: Program, funcs: list[FuncInfo], live: set[int] | None = None):
        self.program = program
        self.live = live
        self.globals: dict[str, TV] = {}
        self.attrs: dict[tuple[str, str], TV] = {}  # (class, attr) -> taint of `self.attr`
        self.states: dict[int, _FuncState] = {}
        self.by_name: dict[str, list[_FuncState]] = {}
        self.classes = set(program.classes)
        self.param_in: dict[int, dict[str, TV]] = {}
        for file, tree in program.modules:
            st = _FuncState(None, file)
            st.stmts = [n for n in own_nodes(tree) if isinstance(n, _STMT_KINDS)]
            self.states[id(tree)] = st
        for f in funcs:
            a = f.node.args
            st = _FuncState(f, f.file, [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs], cls=f.cls)
            if a.vararg:
                st.params.append(a.vararg.arg)
            st.stmts = [n for n in own_nodes(f.node) if isinstance(n, _STMT_KINDS)]
            st.locals = {p: {f"p:{p}": (RAW, ())} for p in st.params}
            self.states[id(f.node)] = st
            self.by_name.setdefault(f.name, []).append(st)
        self.train_fed = self._train_fed_params()
        self._solve()
        self._contexts()

    # ------------------------------------------------------------------ expression taint
    def expr(self, st: _FuncState, node: ast.AST | None, depth: int = 0) -> TV:
        if node is None or depth > 30:
            return {}
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str) and _VAL_STR.search(node.value):
                return {VAL: (RAW, ((st.file, node.lineno, node),))}
            return {}
        if isinstance(node, ast.Name):
            tv = st.locals.get(node.id)
            if tv is None and st.info is not None:
                tv = self.globals.get(node.id)
            if _VAL_LOC.match(node.id.lower()) or (VAL_NAME.search(node.id.lower()) and not (
                    st.info is not None and (id(st.info.node), node.id) in self.train_fed)):
                tv = join(tv or {}, {VAL: (RAW, ((st.file, getattr(node, "lineno", 0), node),))})
            return tv or {}
        if isinstance(node, ast.Attribute):
            if node.attr in _SHAPE_ATTRS:
                return {}
            if _VAL_LOC.match(node.attr.lower()) or VAL_NAME.search(node.attr.lower()):
                return {VAL: (RAW, ((st.file, node.lineno, node),))}
            if isinstance(node.value, ast.Name) and node.value.id == "self" and st.cls:
                return self.attrs.get((st.cls, node.attr), {})
            return self.expr(st, node.value, depth + 1)
        if isinstance(node, ast.Subscript):
            base = self.expr(st, node.value, depth + 1)
            key = self.expr(st, node.slice, depth + 1)
            return join(base, demote(key))  # a table read with a val key depends on val
        if isinstance(node, ast.Starred):
            return self.expr(st, node.value, depth + 1)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            out: TV = {}
            for e in node.elts:
                out = join(out, self.expr(st, e, depth + 1))
            return out
        if isinstance(node, ast.Dict):
            out = {}
            for v in node.values:
                out = join(out, self.expr(st, v, depth + 1))
            return out
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            out = {}
            for g in node.generators:
                out = join(out, self.expr(st, g.iter, depth + 1))
            elts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            for e in elts:
                out = join(out, self.expr(st, e, depth + 1))
            return out
        if isinstance(node, ast.IfExp):
            return join(self.expr(st, node.body, depth + 1), self.expr(st, node.orelse, depth + 1))
        if isinstance(node, (ast.BinOp, ast.BoolOp, ast.UnaryOp, ast.Compare)):
            out = {}
            for c in ast.iter_child_nodes(node):
                out = join(out, self.expr(st, c, depth + 1))
            return demote(out)
        if isinstance(node, ast.JoinedStr):
            # Formatted values are not carried (a log line quoting a loss is not val data); a path
            # the f-string spells out is a source: f"{root}/fineweb_val_{i:06d}.bin".
            text = "".join(v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "*" for v in node.values)
            return {VAL: (RAW, ((st.file, node.lineno, node),))} if _VAL_STR.search(text) else {}
        if isinstance(node, ast.NamedExpr):
            return self.expr(st, node.value, depth + 1)
        if isinstance(node, ast.Await):
            return self.expr(st, node.value, depth + 1)
        if isinstance(node, ast.Call):
            return self._call(st, node, depth)
        return {}

    def _call(self, st: _FuncState, node: ast.Call, depth: int) -> TV:
        fn = node.func
        short = fn.attr if isinstance(fn, ast.Attribute) else (fn.id if isinstance(fn, ast.Name) else None)
        if (isinstance(fn, ast.Name) and short in _SHAPE_FUNCS) or (isinstance(fn, ast.Attribute) and short in _SHAPE_METHODS):
            return {}
        args = [self.expr(st, a, depth + 1) for a in node.args]
        kwargs = {k.arg: self.expr(st, k.value, depth + 1) for k in node.keywords}
        recv = self.expr(st, fn.value, depth + 1) if isinstance(fn, ast.Attribute) else {}
        where = (st.file, node.lineno, node)
        # A function of the bundle: substitute the arguments into its summary.
        if short in self.by_name and short not in self.classes:
            out: TV = {}
            for callee in self.by_name[short]:
                params = list(callee.params)
                if isinstance(fn, ast.Attribute) and params and params[0] in ("self", "cls"):
                    params = params[1:]
                bound = {p: args[i] for i, p in enumerate(params) if i < len(args)}
                bound.update({k: v for k, v in kwargs.items() if k})
                for label, (lvl, chain) in callee.ret.items():
                    if label == VAL:
                        out = join(out, {VAL: (lvl, chain)})
                    elif label.startswith("p:") and bound.get(label[2:]):
                        arg = bound[label[2:]]
                        out = join(out, {k: (min(lvl, v[0]), v[1]) for k, v in arg.items()})
            if isinstance(fn, ast.Attribute) and recv:
                out = join(out, demote(recv) if short not in _KEEP_CALLS else recv)
            return step(out, where) if out else out
        joined: TV = {}
        for a in args:
            joined = join(joined, a)
        for v in kwargs.values():
            joined = join(joined, v)
        joined = join(joined, recv)
        if not joined:
            return {}
        if short in self.classes:
            return step(joined, where)  # a bundle class built from val data holds val data
        if short in _KEEP_CALLS:
            return step(joined, where)
        return step(demote(joined), where)

    # ------------------------------------------------------------------ statements
    def _bind(self, st: _FuncState, target: ast.AST, tv: TV, table: dict[str, TV]) -> bool:
        changed = False
        if not tv:
            return False
        if isinstance(target, ast.Name):
            new = join(table.get(target.id, {}), tv)
            if new != table.get(target.id):
                table[target.id] = new
                changed = True
        elif isinstance(target, (ast.Tuple, ast.List)):
            for e in target.elts:
                changed |= self._bind(st, e, tv, table)
        elif isinstance(target, ast.Starred):
            changed |= self._bind(st, target.value, tv, table)
        elif isinstance(target, ast.Attribute):
            if isinstance(target.value, ast.Name) and target.value.id == "self" and st.cls:
                only_val = {k: v for k, v in tv.items() if k == VAL}  # object-insensitive: concrete data only
                key = (st.cls, target.attr)
                new = join(self.attrs.get(key, {}), only_val)
                if only_val and new != self.attrs.get(key):
                    self.attrs[key] = new
                    changed = True
            else:
                base = target.value
                while isinstance(base, (ast.Attribute, ast.Subscript)):
                    base = base.value
                if isinstance(base, ast.Name) and base.id != "self":
                    changed |= self._bind(st, base, tv, table)
        elif isinstance(target, ast.Subscript):
            base = target.value
            while isinstance(base, (ast.Attribute, ast.Subscript)):
                base = base.value
            if isinstance(base, ast.Name):
                changed |= self._bind(st, base, tv, table)
        return changed

    def _visit(self, st: _FuncState) -> bool:
        table = st.locals if st.info is not None else self.globals
        if st.info is None:
            st.locals = self.globals
        changed = False
        for n in st.stmts:
            if self.live is not None and id(n) not in self.live and st.info is None:
                continue
            if isinstance(n, (ast.Assign, ast.AugAssign)):
                # `table[key] = v` / `counts[key] += 1`: the table now depends on the key.
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                    if isinstance(t, ast.Subscript):
                        key = self.expr(st, t.slice)
                        if key:
                            changed |= self._bind(st, t, step(demote(key), (st.file, n.lineno, n)), table)
            if isinstance(n, ast.Assign):
                tv = self.expr(st, n.value)
                if tv:
                    tv = step(tv, (st.file, n.lineno, n))
                    for t in n.targets:
                        changed |= self._bind(st, t, tv, table)
            elif isinstance(n, (ast.AnnAssign, ast.AugAssign)) and n.value is not None:
                tv = self.expr(st, n.value)
                if tv:
                    changed |= self._bind(st, n.target, step(tv, (st.file, n.lineno, n)), table)
            elif isinstance(n, (ast.For, ast.AsyncFor, ast.comprehension)):
                tv = self.expr(st, n.iter)
                if tv:
                    changed |= self._bind(st, n.target, tv, table)
            elif isinstance(n, ast.withitem):
                if n.optional_vars is not None:
                    changed |= self._bind(st, n.optional_vars, self.expr(st, n.context_expr), table)
            elif isinstance(n, ast.NamedExpr):
                changed |= self._bind(st, n.target, self.expr(st, n.value), table)
            elif isinstance(n, ast.Return) and st.info is not None:
                tv = self.expr(st, n.value)
                new = join(st.ret, tv)
                if new != st.ret:
                    st.ret = new
                    changed = True
            elif isinstance(n, (ast.Yield, ast.YieldFrom)) and st.info is not None:
                new = join(st.ret, self.expr(st, n.value))
                if new != st.ret:
                    st.ret = new
                    changed = True
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _CONTAINER_ADD:
                tv = {}
                for a in n.args:
                    tv = join(tv, self.expr(st, a))
                if tv:
                    changed |= self._bind(st, n.func.value, step(tv, (st.file, n.lineno, n)), table)
        return changed

    def _solve(self) -> None:
        order = list(self.states.values())
        for _ in range(_ROUNDS):
            changed = False
            for st in order:
                for _inner in range(2):
                    if not self._visit(st):
                        break
                    changed = True
            if not changed:
                break

    def _train_fed_params(self) -> set[tuple[int, str]]:
        """(function, parameter) pairs where a parameter named like validation data
        (`val_tokens`) is handed training data at every call site of the bundle: a temperature
        search reusing `eval_val` on `train_loader.stream.take(65536)` (the 2026-03-24/26
        records). The name alone is then no evidence; an argument not known to be training data
        keeps the name's meaning."""
        verdicts: dict[tuple[int, str], list[bool]] = {}
        for st in self.states.values():
            scope = list(own_nodes(st.info.node)) if st.info is not None else list(st.stmts)
            trained = train_names(scope)
            for _ in range(3):  # `calib = train_loader.stream.take(n)`; `calib = calib[:u + 1]`
                trained |= {x.id for n in scope if isinstance(n, ast.Assign) and mentions_train(n.value, trained)
                            for t in n.targets for x in ast.walk(t) if isinstance(x, ast.Name)}
            for call, name, args, method in self._call_sites(st):
                for callee in self.by_name.get(name, []):
                    params = list(callee.params)
                    if method and params and params[0] in ("self", "cls"):
                        params = params[1:]
                    passed = dict(zip(params, args)) | {k.arg: k.value for k in call.keywords if k.arg}
                    for p in callee.params:
                        if VAL_NAME.search(p.lower()):
                            arg = passed.get(p)
                            verdicts.setdefault((id(callee.info.node), p), []).append(
                                arg is not None and mentions_train(arg, trained))
        return {k for k, v in verdicts.items() if v and all(v)}

    # ------------------------------------------------------------------ contexts
    def _contexts(self) -> None:
        """param_in[f][p]: the taint arriving at parameter p of f from the call sites."""
        for _ in range(3):
            changed = False
            for st in self.states.values():
                for call, name, args, method in self._call_sites(st):
                    for callee in self.by_name.get(name, []):
                        params = list(callee.params)
                        if method and params and params[0] in ("self", "cls"):
                            params = params[1:]
                        pin = self.param_in.setdefault(id(callee.info.node), {})
                        for i, a in enumerate(args):
                            if i < len(params):
                                changed |= self._merge_param(pin, params[i], self.resolved(st, a))
                        for k in call.keywords:
                            if k.arg in params:
                                changed |= self._merge_param(pin, k.arg, self.resolved(st, k.value))
            if not changed:
                break

    def _call_sites(self, st: _FuncState):
        """(call, callee name, its positional arguments, called as a method?) for each call in
        `st`, including a bundle function handed to another call with the arguments after it:
        `timed_eval("final_slot", eval_val_slot, h, device, val_data, model)` runs
        `eval_val_slot(h, device, val_data, model)`."""
        for call in self._calls(st):
            yield call, _short_name(call.func) or "", call.args, isinstance(call.func, ast.Attribute)
            for name, args in handed(call):
                if name in self.by_name:
                    yield call, name, args, False

    @staticmethod
    def _merge_param(pin: dict[str, TV], p: str, tv: TV) -> bool:
        tv = {k: v for k, v in tv.items() if k == VAL}
        new = join(pin.get(p, {}), tv)
        if tv and new != pin.get(p):
            pin[p] = new
            return True
        return False

    def _calls(self, st: _FuncState):
        root = st.info.node if st.info is not None else None
        nodes = own_nodes(root) if root is not None else [n for n in st.stmts]
        if root is None:
            for s in st.stmts:
                for n in own_nodes(s):
                    if isinstance(n, ast.Call):
                        yield n
            return
        for n in nodes:
            if isinstance(n, ast.Call):
                yield n

    # ------------------------------------------------------------------ queries
    def state(self, func: FuncInfo | None, file: str | None = None) -> _FuncState | None:
        if func is not None:
            return self.states.get(id(func.node))
        for (f, tree) in self.program.modules:
            if f == file:
                return self.states.get(id(tree))
        return None

    def resolved(self, st: _FuncState, node: ast.AST) -> TV:
        """Taint of `node` in `st` with parameter labels replaced by what the call sites pass."""
        tv = self.expr(st, node)
        out: TV = {}
        pin = self.param_in.get(id(st.info.node), {}) if st.info is not None else {}
        for k, (lvl, chain) in tv.items():
            if k == VAL:
                out = join(out, {VAL: (lvl, chain)})
            elif k.startswith("p:") and k[2:] in pin:
                for _, (l2, c2) in pin[k[2:]].items():
                    out = join(out, {VAL: (min(lvl, l2), (c2 + chain)[-_MAX_CHAIN:])})
        return out

    def of(self, func: FuncInfo | None, node: ast.AST, file: str | None = None) -> tuple[int, tuple[str, ...]] | None:
        """(level, chain) of validation taint on `node` inside `func` (module code when None)."""
        st = self.state(func, file)
        if st is None:
            return None
        tv = self.resolved(st, node)
        return tv.get(VAL)

    def names(self, func: FuncInfo | None, level: int = RAW, file: str | None = None) -> set[str]:
        st = self.state(func, file)
        if st is None:
            return set()
        table = st.locals if st.info is not None else self.globals
        out = set()
        for name in table:
            got = self.resolved(st, ast.Name(id=name, ctx=ast.Load(), lineno=0))
            if VAL in got and got[VAL][0] >= level:
                out.add(name)
        return out


_STMT_KINDS = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor, ast.comprehension, ast.withitem,
               ast.NamedExpr, ast.Return, ast.Yield, ast.YieldFrom, ast.Call)


def _short_name(fn: ast.AST) -> str | None:
    if isinstance(fn, ast.Attribute):
        return fn.attr
    if isinstance(fn, ast.Name):
        return fn.id
    d = dotted(fn)
    return d.split(".")[-1] if d else None


def chain_text(chain: tuple[str, ...]) -> str:
    return " -> ".join(chain)


def bound_later(f: FuncInfo | None, use: ast.AST, chain: tuple) -> bool:
    """The taint reaches `use` only through a binding made further down the same function and
    outside every loop that holds `use`, so at run time it cannot: the taint is flow-insensitive,
    and a name reused after the training loop (`diag = jepa_diagnostics(model, val_tokens)` after
    `loss, diag = model(x, y)` in the 2026-03-26 JEPA record) would otherwise reach back."""
    if f is None:
        return False
    end = f.node.end_lineno or f.node.lineno
    loops = [n for n in ast.walk(f.node) if isinstance(n, (ast.For, ast.While)) and n.lineno <= use.lineno <= (n.end_lineno or 0)]
    return any(file == f.file and use.lineno < line <= end and not any(line <= (lp.end_lineno or 0) for lp in loops)
               for file, line, _ in chain)


def handed(call: ast.Call) -> list[tuple[str, list[ast.expr]]]:
    """Names passed as plain positional arguments, each with the arguments after it: a function
    handed to a wrapper that runs it (`timed_eval("final_slot", eval_val_slot, h, vd, model)`)."""
    return [(a.id, call.args[i + 1:]) for i, a in enumerate(call.args) if isinstance(a, ast.Name)]

