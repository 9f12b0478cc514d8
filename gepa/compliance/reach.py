"""Reachability of submitted code under a concrete configuration, decided statically.

The review must not flag dead code (the #1458 false positive: an n-gram cache that only runs
when `NGRAM_EVAL_ORDER > 0`, off by default). So conditions are evaluated with the script's own
defaults, taken from `os.environ.get(NAME, default)` expressions in hyperparameter classes and
module constants, optionally overridden by the settings a log recorded. A condition that cannot
be decided keeps both branches alive: unknown means "may run".

Functions are reached from live module-level code through live references (by name, or by
attribute name for methods); `forward`/`__call__`/`__init__` of a referenced class are reached
with the class.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass, field

_ENV_FUNCS = {"os.environ.get", "os.getenv", "environ.get", "getenv"}
_CASTS = {"int": int, "float": float, "str": str, "bool": bool}
_CMP = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b, ast.Is: operator.is_, ast.IsNot: operator.is_not,
}
_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}


class Unknown(Exception):
    pass


def dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def walk(node: ast.AST) -> list[ast.AST]:
    """`ast.walk(node)` as a list kept on the node (trees are never mutated after parsing).

    Reachability and the detectors walk the same statements once per logged configuration;
    caching keeps a 160 KB script well under a second.
    """
    cached = getattr(node, "_gc_walk", None)
    if cached is None:
        cached = list(ast.walk(node))
        node._gc_walk = cached
    return cached


def own_nodes(node: ast.AST) -> list[ast.AST]:
    """The nodes of a subtree, not entering nested function/class/lambda bodies (cached)."""
    cached = getattr(node, "_gc_local", None)
    if cached is not None:
        return cached
    out = []
    stack = [node]
    while stack:
        n = stack.pop()
        out.append(n)
        for child in ast.iter_child_nodes(n):
            if isinstance(child, _NESTED):
                continue
            stack.append(child)
    node._gc_local = out
    return out


_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _parse_logged(value: str):
    v = value.strip()
    if v in ("True", "true"):
        return True
    if v in ("False", "false"):
        return False
    if v in ("None", ""):
        return None if v == "None" else ""
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


class Env:
    """Values of hyperparameters and module constants under defaults plus overrides."""

    def __init__(self, trees: list[ast.Module], overrides: dict[str, str] | None = None,
                 evidenced: set[int] | None = None):
        self.overrides = {k.lower(): v for k, v in (overrides or {}).items()}
        # `if` statements whose body printed a line the run's log contains: they ran, whatever
        # the defaults say (old logs do not dump their hyperparameters).
        self.evidenced = evidenced or set()
        self.attrs: dict[str, object] = {}
        self.consts: dict[str, object] = {}
        # `_E = os.environ.get` at module level, then `slot_enabled = bool(int(_E("SLOT_ENABLED", "0")))`.
        self.env_funcs = _ENV_FUNCS | {
            node.targets[0].id for tree in trees for node in tree.body
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
            and dotted(node.value) in _ENV_FUNCS}
        for tree in trees:
            for node in tree.body:
                if isinstance(node, ast.ClassDef):
                    self._class_defaults(node)
                elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    self._bind(self.consts, node.targets[0].id, node.value)
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                    self._bind(self.consts, node.target.id, node.value)
        self._function_locals(trees)

    def _function_locals(self, trees: list[ast.Module]) -> None:
        """Flags set inside a function: `ngram_enabled = bool(int(os.environ.get("NGRAM_ENABLED", "0")))`.

        A name bound exactly once in the whole program (counting parameters, loop and `with`
        targets, augmented and tuple assignments as bindings) by a plain assignment whose value
        can be evaluated is as known as a module constant; every other local stays unknown.
        """
        for name, value in _single_local_bindings(trees).items():
            if name not in self.consts:
                self._bind(self.consts, name, value)

    def _bind(self, table: dict, name: str, value: ast.AST) -> None:
        if name.lower() in self.overrides:
            table[name] = _parse_logged(self.overrides[name.lower()])
            return
        try:
            table[name] = self.value(value)
        except (Unknown, Exception):  # noqa: BLE001 - any failure means "not known"
            table.pop(name, None)

    def _class_defaults(self, cls: ast.ClassDef) -> None:
        for node in cls.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self._bind(self.attrs, node.targets[0].id, node.value)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                self._bind(self.attrs, node.target.id, node.value)
        for fn in cls.body:  # `self.x = ...` in __init__ of config-like classes
            if isinstance(fn, ast.FunctionDef) and fn.name == "__init__":
                for st in ast.walk(fn):
                    if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Attribute) \
                            and isinstance(st.targets[0].value, ast.Name) and st.targets[0].value.id == "self":
                        if st.targets[0].attr not in self.attrs:
                            self._bind(self.attrs, st.targets[0].attr, st.value)

    def value(self, node: ast.AST, depth: int = 0):
        if depth > 40:
            raise Unknown
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id == "__name__":
                return "__main__"
            if node.id in self.consts:
                return self.consts[node.id]
            if node.id in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.id]
            raise Unknown
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, (ast.Name, ast.Attribute, ast.Call)) and node.attr in self.attrs:
                return self.attrs[node.attr]
            if isinstance(node.value, (ast.Name, ast.Attribute)) and node.attr.lower() in self.overrides:
                return _parse_logged(self.overrides[node.attr.lower()])  # a field the log printed
            raise Unknown
        if isinstance(node, ast.Subscript):
            if dotted(node.value) in ("os.environ", "environ"):
                key = self.value(node.slice, depth + 1)
                if isinstance(key, str) and key.lower() in self.overrides:
                    return self.overrides[key.lower()]
            raise Unknown
        if isinstance(node, ast.Call):
            name = dotted(node.func)
            if name in self.env_funcs and node.args:
                key = self.value(node.args[0], depth + 1)
                if isinstance(key, str) and key.lower() in self.overrides:
                    return self.overrides[key.lower()]
                return self.value(node.args[1], depth + 1) if len(node.args) > 1 else None
            if name == "getattr" and len(node.args) == 3:
                # `getattr(args, "slot_enabled", False)`: the field when the config class defines
                # it (or a log sets it), else the default the code falls back to.
                key = self.value(node.args[1], depth + 1)
                if isinstance(key, str):
                    if key.lower() in self.overrides:
                        return _parse_logged(self.overrides[key.lower()])
                    if key in self.attrs:
                        return self.attrs[key]
                    return self.value(node.args[2], depth + 1)
                raise Unknown
            if name in _CASTS and len(node.args) == 1:
                return _CASTS[name](self.value(node.args[0], depth + 1))
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("lower", "upper", "strip") and not node.args:
                v = self.value(node.func.value, depth + 1)
                if isinstance(v, str):
                    return getattr(v, node.func.attr)()
            raise Unknown
        if isinstance(node, ast.UnaryOp):
            v = self.value(node.operand, depth + 1)
            if isinstance(node.op, ast.Not):
                return not v
            if isinstance(node.op, ast.USub):
                return -v
            raise Unknown
        if isinstance(node, ast.BoolOp):
            vals = [self.value(v, depth + 1) for v in node.values]
            if isinstance(node.op, ast.And):
                out = True
                for v in vals:
                    out = out and v
                return out
            out = False
            for v in vals:
                out = out or v
            return out
        if isinstance(node, ast.Compare):
            left = self.value(node.left, depth + 1)
            for op, comp in zip(node.ops, node.comparators):
                right = self.value(comp, depth + 1)
                if type(op) not in _CMP or not _CMP[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            return _BIN[type(node.op)](self.value(node.left, depth + 1), self.value(node.right, depth + 1))
        if isinstance(node, ast.IfExp):
            return self.value(node.body if self.value(node.test, depth + 1) else node.orelse, depth + 1)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            vals = [self.value(e, depth + 1) for e in node.elts]
            return tuple(vals) if not isinstance(node, ast.Set) else set(vals)
        raise Unknown

    def truth(self, test: ast.AST) -> bool | None:
        try:
            return bool(self.value(test))
        except Exception:  # noqa: BLE001 - Unknown, TypeError, ValueError: undecidable
            return None


def _single_local_bindings(trees: list[ast.Module]) -> dict[str, ast.AST]:
    """Names bound exactly once inside functions, by a plain assignment -> the assigned value."""
    key = tuple(id(t) for t in trees)
    memo = getattr(trees[0], "_gc_bindings", None) if trees else None
    if memo is not None and memo[0] == key:
        return memo[1]
    single: dict[str, ast.AST] = {}
    count: dict[str, int] = {}

    def bind(name: str, value: ast.AST | None) -> None:
        count[name] = count.get(name, 0) + 1
        if value is not None:
            single[name] = value

    def bind_targets(target: ast.AST) -> None:
        for m in walk(target):
            if isinstance(m, ast.Name):
                bind(m.id, None)

    for tree in trees:
        for fn in walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            a = fn.args
            for arg in a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]:
                bind(arg.arg, None)
            if isinstance(fn, ast.Lambda):
                continue
            for st in fn.body:
                if isinstance(st, _NESTED):
                    bind(st.name, None)
                    continue
                for n in own_nodes(st):
                    if isinstance(n, ast.Assign):
                        if len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
                            bind(n.targets[0].id, n.value)
                        else:
                            for t in n.targets:
                                bind_targets(t)
                    elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name):
                        bind(n.target.id, n.value)
                    elif isinstance(n, (ast.AugAssign, ast.For, ast.AsyncFor, ast.comprehension, ast.NamedExpr)):
                        bind_targets(n.target)
                    elif isinstance(n, ast.withitem) and n.optional_vars is not None:
                        bind_targets(n.optional_vars)
                    elif isinstance(n, (ast.Global, ast.Nonlocal)):
                        for name in n.names:
                            bind(name, None)
                            bind(name, None)
    out = {name: v for name, v in single.items() if count.get(name) == 1}
    if trees:
        trees[0]._gc_bindings = (key, out)
    return out


def evidenced_branches(trees: list[ast.Module], printed: set[str]) -> set[int]:
    """Ids of `if` statements whose body holds a string that starts with a label the log printed
    (`log0(f"legal_ttt_exact val_loss:...")` and a log line `legal_ttt_exact val_loss:...`)."""
    labels = {p.strip() for p in printed if len(p.strip()) >= 6 and any(ch.isalpha() for ch in p)}
    if not labels:
        return set()
    out: set[int] = set()
    for tree in trees:
        for node in walk(tree):
            if not isinstance(node, ast.If):
                continue
            for st in node.body:
                for n in walk(st):
                    text = None
                    if isinstance(n, ast.Constant) and isinstance(n.value, str):
                        text = n.value
                    elif isinstance(n, ast.JoinedStr) and n.values and isinstance(n.values[0], ast.Constant):
                        text = str(n.values[0].value)
                    if text and any(text.startswith(lb) and text[len(lb):len(lb) + 1] in (" ", ":", "") for lb in labels):
                        out.add(id(node))
                        break
                if id(node) in out:
                    break
    return out


@dataclass
class FuncInfo:
    name: str
    node: ast.FunctionDef | ast.AsyncFunctionDef
    file: str
    cls: str | None = None


@dataclass
class Program:
    """All parsed modules of a submission (the entry script plus followed local helpers)."""

    modules: list[tuple[str, ast.Module]]
    funcs: dict[str, list[FuncInfo]] = field(default_factory=dict)
    classes: dict[str, list[str]] = field(default_factory=dict)  # class -> method names

    def __post_init__(self):
        for file, tree in self.modules:
            self._collect(tree.body, file, None)

    def _collect(self, body, file, cls):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.funcs.setdefault(node.name, []).append(FuncInfo(node.name, node, file, cls))
                self._collect(node.body, file, cls)  # nested helpers are functions too
            elif isinstance(node, ast.ClassDef):
                self.classes.setdefault(node.name, []).extend(
                    n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
                self._collect(node.body, file, node.name)
            elif isinstance(node, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
                for part in ("body", "orelse", "finalbody"):
                    self._collect(getattr(node, part, []) or [], file, cls)




def live_nodes(stmts: list[ast.stmt], env: Env, out: set[int]) -> None:
    """Add ids of every AST node that can execute in `stmts` (nested defs excluded)."""
    for st in stmts:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.add(id(st))
            continue
        if isinstance(st, ast.ClassDef):
            out.add(id(st))
            live_nodes([n for n in st.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))], env, out)
            continue
        out.add(id(st))
        if isinstance(st, (ast.If, ast.While)):
            out.update(id(n) for n in walk(st.test))
            t = env.truth(st.test)
            if t is False and id(st) in env.evidenced:
                t = None
            if t is not False:
                live_nodes(st.body, env, out)
            if t is not True or isinstance(st, ast.While):
                live_nodes(st.orelse, env, out)
            continue
        if isinstance(st, (ast.For, ast.AsyncFor)):
            out.update(id(n) for n in walk(st.target))
            out.update(id(n) for n in walk(st.iter))
            live_nodes(st.body, env, out)
            live_nodes(st.orelse, env, out)
            continue
        if isinstance(st, (ast.With, ast.AsyncWith)):
            for item in st.items:
                out.update(id(n) for n in walk(item))
            live_nodes(st.body, env, out)
            continue
        if isinstance(st, ast.Try) or type(st).__name__ == "TryStar":
            live_nodes(st.body, env, out)
            for h in st.handlers:
                out.add(id(h))
                live_nodes(h.body, env, out)
            live_nodes(st.orelse, env, out)
            live_nodes(st.finalbody, env, out)
            continue
        if type(st).__name__ == "Match":
            out.update(id(n) for n in walk(st.subject))
            for case in st.cases:
                live_nodes(case.body, env, out)
            continue
        out.update(id(n) for n in walk(st))


@dataclass
class Reach:
    live: set[int]
    reached: list[FuncInfo]
    module_live: set[int]


def _refs(nodes: list[ast.AST], live: set[int]) -> tuple[set[str], set[str]]:
    names, attrs = set(), set()
    for root in nodes:
        for n in walk(root):
            if id(n) not in live:
                continue
            if isinstance(n, ast.Name):
                names.add(n.id)
            elif isinstance(n, ast.Attribute):
                attrs.add(n.attr)
    return names, attrs


def _is_library(tree: ast.Module) -> bool:
    """Definitions only: functions, and module statements that bind constants (`LIB = Path(...)`),
    but none that runs anything (a call statement, an `if __name__ == "__main__":`, a loop)."""
    has_defs = any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in tree.body)
    runs = any(isinstance(n, (ast.Expr, ast.If, ast.For, ast.While, ast.With, ast.Try)) and
               not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))  # a docstring
               for n in tree.body)
    return has_defs and not runs


def reach(program: Program, env: Env, entry_files: set[str] | None = None) -> Reach:
    live: set[int] = set()
    for file, tree in program.modules:
        if entry_files is None or file in entry_files:
            live_nodes(tree.body, env, live)
    module_live = set(live)
    roots: list[ast.AST] = [tree for file, tree in program.modules if entry_files is None or file in entry_files]
    seen: set[int] = set()
    reached: list[FuncInfo] = []
    pending_names, pending_attrs = _refs(roots, live)
    if program.modules and _is_library(program.modules[0][1]):
        # The entry defines functions and runs none (a helper module reviewed on its own): how it
        # is called is unknown, so every function it defines is taken as reachable.
        pending_names |= {n.name for n in program.modules[0][1].body
                          if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    done_names: set[str] = set()
    while pending_names or pending_attrs:
        names, attrs = pending_names, pending_attrs
        pending_names, pending_attrs = set(), set()
        targets: list[FuncInfo] = []
        for n in names - done_names:
            done_names.add(n)
            targets += [f for f in program.funcs.get(n, []) if f.cls is None]
            if n in program.classes:
                for m in ("__init__", "forward", "__call__", "__post_init__", "__enter__", "__exit__"):
                    targets += [f for f in program.funcs.get(m, []) if f.cls == n]
        for a in attrs - done_names:
            done_names.add(a)
            targets += [f for f in program.funcs.get(a, []) if f.cls is not None or True]
        for f in targets:
            if id(f.node) in seen:
                continue
            seen.add(id(f.node))
            reached.append(f)
            before = len(live)
            live_nodes(f.node.body, env, live)
            if len(live) != before or True:
                n2, a2 = _refs(f.node.body, live)
                pending_names |= n2
                pending_attrs |= a2
    return Reach(live=live, reached=reached, module_live=module_live)
