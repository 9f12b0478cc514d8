"""Static review of submitted training/evaluation code (parse with `ast`; never import or run it).

Families detected, each only in code reachable under the defaults or a logged configuration:
  code.ttt-pre-eval      weights updated on validation tokens before they are scored
  code.rescore           validation scored per epoch / again after adaptation, later pass reported
  code.target-in-key     a table lookup or gate at scoring time keyed by the target token
  code.slot              a per-batch delta optimised on the targets it then scores
  code.val-in-training   validation data used to train or to calibrate quantisation
  code.network           downloads or sockets
  code.val-cache         a count table / cache built from the validation stream outside score-first scoring
  code.unnormalised      a scored probability mixing in a target-only count ratio (not normalised)
  code.paid-prefix       validation tokens saved into the artifact or the model
  code.encoding          a PEP 263 cookie that makes Python run other text than a UTF-8 reader sees
  code.bidi              Unicode bidirectional controls (Trojan Source)
  code.val-warmup        (warning) backward/step on validation tokens followed by a restore, or on a
                         throwaway copy/adapter that is discarded before scoring
  code.opaque            (human review) an `exec` payload that could not be decoded statically
  code.native            (human review) C/C++/CUDA sources, compiled libraries or run-time compilation

Validation data is followed by taint tracking (`taint.py`) from its sources (the val files),
not by variable names; findings quote the taint chain (file:line steps) that reached them.

This module holds the entry points, the findings and `_Analysis` (reach, the scoring and update
facts of each function, the score-before-update order, pre-eval calls, calibration on validation
data). Checks that stand on their own are mixins `_Analysis` inherits: mechanisms validation data
reaches (`taint_checks.py`), score slots rewritten in a later pass (`score_slots.py`), lookups keyed
by the target (`target_keys.py`), training on throwaway copies (`throwaway.py`), network and native
code (`network_native.py`), calibration after the training budget (`budget.py`); `review_names.py`
holds the names and name heuristics they share.

Vocabulary: a *scoring* function accumulates a loss sum (`loss_sum += ...`, or passes it to a
helper that does); a *val read* subscripts or iterates validation tokens; a *val update* is a
`backward()`/`optimizer.step()` whose loop reads validation tokens outside `no_grad`. Score-first
TTT is a scoring loop whose body scores a chunk before the update on it; phased/global TTT
called from inside such a loop after scoring is legal.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from gepa.compliance import pysyntax
from gepa.compliance.budget import CalibBudget
from gepa.compliance.network_native import NetworkNative
from gepa.compliance.policy import PER_RUN_KEYS
from gepa.compliance.reach import Env, FuncInfo, Program, dotted, evidenced_branches, own_nodes, reach, walk
from gepa.compliance.review_names import ACC, CALIB, LOSSY, OPT, assigned, name_of
from gepa.compliance.score_slots import ScoreSlots
from gepa.compliance.source import decode_source, is_code, is_native, is_python
from gepa.compliance.taint import DERIVED, RAW, Taint, bound_later, chain_text, handed, render
from gepa.compliance.taint_checks import TaintChecks
from gepa.compliance.target_keys import TargetKeys
from gepa.compliance.throwaway import Throwaway
from gepa.compliance.wrapper import unwrap

RULE_TEXT = {
    "code.ttt-pre-eval": "Weights are updated on validation tokens before those tokens are scored "
                         "(pre-eval / pre-quant TTT), so the score is not a prediction of unseen text.",
    "code.rescore": "Validation tokens are scored more than once and a later pass is reported; "
                    "only the first score-before-update pass counts.",
    "code.target-in-key": "A lookup or gate used at scoring time reads the target token being predicted, "
                          "so the probability depends on the answer.",
    "code.slot": "A per-batch delta or bias is optimised against the targets it then scores (SLOT), "
                 "which breaks causality.",
    "code.val-in-training": "Validation data feeds training or quantisation calibration, which the rules forbid.",
    "code.network": "The code can reach the network (downloads or sockets); submissions must be self-contained.",
    "code.val-warmup": "A backward/step on validation tokens runs before scoring; it is legal only if the "
                       "weights and optimizer state are restored before the first score.",
    "code.opaque": "An exec'd payload could not be decoded statically, so the code it runs was not reviewed; "
                   "a human reviewer must read it.",
    "code.val-cache": "A cache or count table is built from the validation stream outside the score-first loop, "
                      "so predictions can use tokens that have not been scored yet (two-pass n-gram rescoring).",
    "code.unnormalised": "A scored probability mixes in a count ratio looked up for the target alone, which is not "
                         "a distribution normalised over the whole vocabulary.",
    "code.paid-prefix": "Validation tokens are stored in the artifact or the model (a paid prefix); validation "
                        "content may not be stored.",
    "code.encoding": "The file's coding declaration makes Python run different text than a UTF-8 reader sees.",
    "code.bidi": "Unicode bidirectional control characters make the displayed code differ from the parsed code.",
    "code.calib-budget": "Quantisation calibration that reads training data must run inside the 600 s training "
                         "budget; this one appears to run after the training clock stopped.",
    "code.native": "Native code (C/C++/CUDA sources, compiled libraries or code compiled at run time) cannot be "
                   "reviewed statically; a human reviewer must read it.",
}
WARNING_RULES = {"code.val-warmup"}
# Findings that do not say the method is illegal, but that the review could not see through:
# they are never a silent pass; a human reviewer decides.
REVIEW_RULES = {"code.opaque", "code.native"}
CODE_RULES = tuple(RULE_TEXT)


# Findings about the file itself (how it reads), which hold whether or not the file runs.
FILE_RULES = {"code.encoding", "code.bidi", "code.native", "code.opaque",
              # A shipped tool that writes validation tokens out builds a paid prefix, run or not.
              "code.paid-prefix"}


def severity(rule: str) -> str:
    return "warning" if rule in WARNING_RULES else ("review" if rule in REVIEW_RULES else "error")

_VAL = re.compile(r"(^|_)(val|valid|validation)_(tokens?|toks|data|ids|seqs?|stream|np|arr|set|buf|docs?|files|loader|shards?)(_|$)|^val$|fineweb_val")
_EPOCH = re.compile(r"^_?(ep|epoch|epochs|ep_i|epoch_idx|pass_idx|pass_i|rep|sweep)$")
_READ_METHODS = {"to", "cuda", "view", "reshape", "unfold", "split", "chunk", "narrow", "index_select", "next_batch",
                 "numpy", "tolist", "flatten", "long", "int", "float", "contiguous", "clone", "pin_memory"}


@dataclass(frozen=True)
class Finding:
    rule: str
    line: int
    message: str
    file: str = "train_gpt.py"
    chain: tuple[str, ...] = ()  # taint steps (file:line code) from a validation source to here
    # A finding the review could not confirm from the code alone (it only warns).
    soft: bool = False
    # In a shipped file that the entry script never imports, execs or runs (a data-prep or
    # download script): reviewed and reported, but it does not take part in the run.
    standalone: bool = False

    @property
    def severity(self) -> str:
        sev = "warning" if self.soft and severity(self.rule) == "error" else severity(self.rule)
        if self.standalone and sev == "error" and self.rule not in FILE_RULES:
            return "warning"
        return sev

    def to_dict(self) -> dict:
        d = {"rule": self.rule, "line": self.line, "message": self.message, "file": self.file,
             "severity": self.severity}
        if self.standalone:
            d["standalone"] = True
        if self.chain:
            d["taint"] = list(self.chain)
        return d


@dataclass
class ScanReport:
    findings: list[Finding] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    layers: dict[str, list[str]] = field(default_factory=dict)  # file -> wrapper codecs peeled
    parse_errors: dict[str, str] = field(default_factory=dict)
    code_files: dict[str, int] = field(default_factory=dict)  # every shipped code file -> bytes
    entry: str = "train_gpt.py"  # the file that runs (a stub's exec'd sibling when followed)

    @property
    def code_bytes(self) -> int:
        return sum(self.code_files.values())

    @property
    def flagged(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    @property
    def needs_review(self) -> bool:
        return any(f.severity == "review" for f in self.findings)

    @property
    def verdict(self) -> str:
        return "flagged" if self.flagged else ("needs-review" if self.needs_review else "clean")

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "findings": [f.to_dict() for f in self.findings],
                "files": self.files, "decoded_wrappers": self.layers, "parse_errors": self.parse_errors,
                "code_files": self.code_files, "code_bytes": self.code_bytes}


_local = own_nodes  # nodes of a subtree without nested function/class bodies (cached per node)


def _is_val(node: ast.AST, extra: set[str]) -> bool:
    n = name_of(node)
    return bool(n) and (bool(_VAL.search(n.lower())) or n in extra)


def _no_grad_ctx(item: ast.withitem) -> bool:
    d = dotted(item.context_expr.func) if isinstance(item.context_expr, ast.Call) else dotted(item.context_expr)
    return bool(d) and d.split(".")[-1] in ("no_grad", "inference_mode")


class _Analysis(ScoreSlots, TargetKeys, TaintChecks, Throwaway, NetworkNative, CalibBudget):
    def __init__(self, program: Program, env: Env, entry: set[str]):
        self.program, self.env = program, env
        self.r = reach(program, env, entry)
        self.live = self.r.live
        self.findings: list[Finding] = []
        self.taint = Taint(program, self.r.reached, self.r.module_live)
        self.val_extra: dict[int, set[str]] = {id(f.node): self.taint.names(f, RAW) for f in self.r.reached}
        self.module_extra: set[str] = set()
        for file, _ in program.modules:
            self.module_extra |= self.taint.names(None, RAW, file=file)
        self.accumulators: set[str] = set()
        self.param_accumulators: set[str] = set()
        self._find_accumulators()
        self._propagate_val()
        self._slots: dict[int, dict[str, list[ast.AST]]] = {}
        self._raw_slots: dict[int, dict[str, list[ast.AST]]] = {}
        self._callee_stores: set[int] = set()  # calls whose helper stores into the slots it is handed
        self.facts = {id(f.node): self._facts(f) for f in self.r.reached}
        self._tk_done: set = set()
        self._rk_memo: dict = {}
        self.V = {f.name for f in self.r.reached if self.facts[id(f.node)]["val_updates"] and not self.facts[id(f.node)]["scores"]}
        self.callers = self._callers()

    # ---------- facts ----------
    def _find_accumulators(self):
        for f in self.r.reached:
            params = {a.arg for a in f.node.args.args + f.node.args.kwonlyargs}
            # `sn = nll[i, s:wl].to(torch.float64); ls += sn.sum()`: a local sliced from a parameter.
            from_params = set(params)
            for _ in range(2):
                from_params |= {t.id for n in _local(f.node) if isinstance(n, ast.Assign)
                                and any(isinstance(x, ast.Name) and x.id in from_params for x in ast.walk(n.value))
                                for t in n.targets if isinstance(t, ast.Name)}
            for n in _local(f.node):
                if isinstance(n, ast.AugAssign) and name_of(n.target) in params and ACC.search((name_of(n.target) or "").lower()):
                    self.accumulators.add(f.name)
                # `ls += lbl.sum()` on a parameter, whatever its name: a helper that adds into
                # the caller's accumulators (called with per-token losses it is a score).
                if isinstance(n, ast.AugAssign) and isinstance(n.op, ast.Add) and isinstance(n.target, ast.Name) \
                        and n.target.id in params and any(isinstance(x, ast.Name) and x.id in from_params for x in ast.walk(n.value)):
                    self.param_accumulators.add(f.name)

    def _calls(self, root):
        for n in _local(root):
            if isinstance(n, ast.Call) and id(n) in self.live:
                yield n

    def _propagate_val(self):
        by_name: dict[str, list[FuncInfo]] = {}
        for f in self.r.reached:
            by_name.setdefault(f.name, []).append(f)
        roots = [(None, t) for _, t in self.program.modules] + [(f, f.node) for f in self.r.reached]
        for _ in range(3):
            changed = False
            for owner, root in roots:
                extra = self.val_extra.get(id(owner.node), set()) if owner else self.module_extra
                for call in self._calls(root):
                    callee = name_of(call.func)
                    for g in by_name.get(callee or "", []):
                        params = [a.arg for a in g.node.args.args]
                        if g.cls and params and params[0] == "self" and isinstance(call.func, ast.Attribute):
                            params = params[1:]
                        hits = {params[i] for i, a in enumerate(call.args) if i < len(params) and _is_val(a, extra)}
                        hits |= {k.arg for k in call.keywords if k.arg and _is_val(k.value, extra)}
                        s = self.val_extra.setdefault(id(g.node), set())
                        if not hits <= s:
                            s |= hits
                            changed = True
            if not changed:
                break

    def _val_reads(self, f: FuncInfo, include_no_grad: bool) -> list[ast.AST]:
        extra = self.val_extra.get(id(f.node), set())
        reads: list[ast.AST] = []

        def visit(stmts, in_ng):
            for st in stmts:
                if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    continue
                if isinstance(st, (ast.With, ast.AsyncWith)):
                    visit(st.body, in_ng or any(_no_grad_ctx(i) for i in st.items))
                    continue
                subs = [getattr(st, p) for p in ("body", "orelse", "finalbody") if isinstance(getattr(st, p, None), list)]
                heads = [c for c in ast.iter_child_nodes(st) if not isinstance(c, ast.stmt)]
                for h in heads:
                    for n in _local(h):
                        if id(n) not in self.live or (in_ng and not include_no_grad):
                            continue
                        if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load) and _is_val(n.value, extra):
                            reads.append(n)
                        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _READ_METHODS \
                                and _is_val(n.func.value, extra):
                            reads.append(n)
                if isinstance(st, (ast.For, ast.AsyncFor)) and id(st) in self.live and not (in_ng and not include_no_grad) \
                        and _is_val(st.iter, extra):
                    reads.append(st)
                for s in subs:
                    visit(s, in_ng)
                for h in getattr(st, "handlers", []) or []:
                    visit(h.body, in_ng)
        visit(f.node.body, False)
        return reads

    def _train_events(self, root) -> list[ast.Call]:
        out = []
        for c in self._calls(root):
            if isinstance(c.func, ast.Attribute):
                if c.func.attr == "backward":
                    out.append(c)
                elif c.func.attr == "step" and OPT.search((name_of(c.func.value) or "").lower()):
                    out.append(c)
            if dotted(c.func) in ("torch.autograd.grad", "autograd.grad"):
                out.append(c)
        return out

    def _score_events(self, root, f: FuncInfo | None = None) -> list[ast.AST]:
        out = []
        # A loss summed *after* its own backward() is bookkeeping for a training step
        # (`loss.backward(); opt.step(); epoch_loss_sum += loss.detach()`), not a score; a
        # score taken before the update (`loss_sum += ptl.sum(); ptl.mean().backward()`) is.
        trained: dict[str, int] = {}
        for c in self._train_events(root):
            if isinstance(c.func, ast.Attribute) and c.func.attr == "backward":
                for name in _loss_names(c.func.value):
                    trained[name] = min(trained.get(name, c.lineno), c.lineno)
        for n in _local(root):
            if id(n) not in self.live:
                continue
            if isinstance(n, ast.AugAssign) and isinstance(n.op, ast.Add) and ACC.search((name_of(n.target) or "").lower()):
                if any(isinstance(m, ast.Name) and m.id in trained and n.lineno > trained[m.id] for m in ast.walk(n.value)):
                    continue
                out.append(n)
            elif isinstance(n, ast.AugAssign) and isinstance(n.op, ast.Add) and f is not None and \
                    LOSSY.search(ast.unparse(n.value).lower()) and (got := self._val(f, f.file, n.value)) and \
                    not bound_later(f, n, got[1]):
                # A per-token loss of validation data summed into anything (`ls += nll.sum()`).
                if any(isinstance(m, ast.Name) and m.id in trained and n.lineno > trained[m.id] for m in ast.walk(n.value)):
                    continue
                out.append(n)
            elif isinstance(n, ast.Call) and f is not None and name_of(n.func) in self.param_accumulators and \
                    any(LOSSY.search(ast.unparse(a).lower()) and self._val(f, f.file, a) for a in n.args):
                out.append(n)
            elif isinstance(n, ast.Call):
                if isinstance(n.func, ast.Attribute) and n.func.attr == "add_" and ACC.search((name_of(n.func.value) or "").lower()):
                    out.append(n)
                elif name_of(n.func) in self.accumulators and any(ACC.search((name_of(a) or "").lower()) for a in n.args):
                    out.append(n)
        if f is not None and root is f.node:
            # `chunk_nll[ci] = -np.log(p).sum()` into slots that are summed into the result (not the
            # bookkeeping of a training step: a loss stored after its own backward()).
            seen = {id(n) for n in out}
            out += [w for ws in self._slot_writes(f).values() for w in ws if id(w) not in seen
                    and not any(isinstance(m, ast.Name) and m.id in trained and w.lineno > trained[m.id]
                                for m in ast.walk(w))]
        return out

    def _facts(self, f: FuncInfo) -> dict:
        scores = self._score_events(f.node, f)
        reads = self._val_reads(f, include_no_grad=bool(scores))
        reqgrad = any(
            (isinstance(n, ast.Call) and any(k.arg == "requires_grad" and isinstance(k.value, ast.Constant) and k.value.value is True for k in n.keywords))
            or (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "requires_grad_"
                and isinstance(n.func.value, ast.Name) and not n.args)
            for n in _local(f.node) if id(n) in self.live)
        trains = self._train_events(f.node)
        top_loop = self._top_loops(f.node)
        read_loops = {top_loop.get(id(r)) for r in reads}
        val_updates = [t for t in trains if reqgrad or top_loop.get(id(t)) in read_loops]
        return {"scores": scores, "reads": reads, "val_updates": val_updates, "reqgrad": reqgrad}

    @staticmethod
    def _top_loops(fn) -> dict[int, int | None]:
        """Map node id -> id of the outermost loop of the function containing it (None outside loops)."""
        cached = getattr(fn, "_gc_top_loops", None)
        if cached is not None:
            return cached
        out: dict[int, int | None] = {}

        def visit(node, loop):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                    continue
                l2 = loop if loop is not None else (id(child) if isinstance(child, (ast.For, ast.While, ast.AsyncFor)) else None)
                out[id(child)] = l2
                visit(child, l2)
        visit(fn, None)
        fn._gc_top_loops = out
        return out

    def _callers(self) -> dict[str, list[FuncInfo | None]]:
        out: dict[str, list[FuncInfo | None]] = {}
        for _, tree in self.program.modules:
            for c in self._calls(tree):
                if id(c) in self.r.module_live:
                    for name in _callees(c):
                        out.setdefault(name, []).append(None)
        for f in self.r.reached:
            for c in self._calls(f.node):
                for name in _callees(c):
                    out.setdefault(name, []).append(f)
        return out

    def _within_scoring(self, f: FuncInfo | None, depth: int = 0) -> bool:
        if f is None or depth > 4:
            return False
        if self.facts[id(f.node)]["scores"]:
            return True
        callers = self.callers.get(f.name, [])
        return bool(callers) and all(self._within_scoring(g, depth + 1) for g in callers)

    # ---------- detectors ----------
    def add(self, rule: str, file: str, line: int, msg: str, chain: tuple = (), soft: bool = False, via: str = "Validation data"):
        chain = render(chain)
        taint = f" {via} reached it through: {chain_text(chain)}." if chain else ""
        self.findings.append(Finding(rule, line, f"{msg}{taint} {RULE_TEXT[rule]}", file, tuple(chain), soft=soft))

    def _roots(self):
        """(function or None, file, root node, live set) for reached functions and module code."""
        for f in self.r.reached:
            yield f, f.file, f.node, self.live
        for file, tree in self.program.modules:
            yield None, file, tree, self.r.module_live

    def _val(self, f: FuncInfo | None, file: str, node: ast.AST, level: int = DERIVED):
        got = self.taint.of(f, node, file=file)
        return got if got is not None and got[0] >= level else None

    def run(self) -> list[Finding]:
        for f in self.r.reached:
            facts = self.facts[id(f.node)]
            if facts["scores"]:
                self._order_function(f, facts)
                self._target_key(f)
            self._calibration(f)
            self._slot_rescore(f)
        self._pre_eval_calls()
        self._train_on_val_files()
        self._network()
        self._native()
        self._tainted_mechanisms()
        self._calib_budget()
        return self.findings

    def _pre_eval_calls(self):
        for name in sorted(self.V):
            for g in self.callers.get(name, []):
                if self._within_scoring(g):
                    continue
                defs = [f for f in self.r.reached if f.name == name]
                roots = [g.node] if g else [t for _, t in self.program.modules]
                file = g.file if g else self.program.modules[0][0]
                for root in roots:
                    for c in self._calls(root):
                        if name in _callees(c) and (g is not None or id(c) in self.r.module_live):
                            d = defs[0] if defs else None
                            where = f" (defined at {d.file}:{d.node.lineno})" if d else ""
                            if d is not None and self._discards(d.node):
                                self.add("code.val-warmup", file, c.lineno,
                                         f"`{name}`{where} trains a throwaway copy/adapter on validation tokens and "
                                         "discards it; the base weights are untouched.")
                                continue
                            got = next((self._val(g, file, a) for a in list(c.args) + [k.value for k in c.keywords]
                                        if self._val(g, file, a)), None)
                            self.add("code.ttt-pre-eval", file, c.lineno,
                                     f"`{name}`{where} runs backward/step on validation tokens and is called here outside any score-first loop.",
                                     got[1] if got else ())

    def _order_function(self, f: FuncInfo, facts: dict):
        updates = {id(n) for n in facts["val_updates"]}
        v_calls = {id(c) for c in self._calls(f.node) if name_of(c.func) in self.V}
        train_ids = updates | v_calls
        if not train_ids:
            return
        score_ids = {id(n) for n in facts["scores"]}
        self._order(f.node.body, f, train_ids, score_ids, facts, loop_vars=[])

    def _has(self, st, ids) -> list[ast.AST]:
        return [n for n in _local(st) if id(n) in ids]

    def _score_time(self, stmts, i) -> int:
        st = stmts[i]
        if not isinstance(st, ast.AugAssign):
            return i
        names = {n.id for n in ast.walk(st.value) if isinstance(n, ast.Name)}
        times = [j for j in range(i) for t in assigned(stmts[j]) if t in names]
        return max(times) if times else i

    def _order(self, stmts, f, train_ids, score_ids, facts, loop_vars):
        s_idx = [i for i, st in enumerate(stmts) if self._has(st, score_ids)]
        t_idx = [i for i, st in enumerate(stmts) if self._has(st, train_ids)]
        if not s_idx or not t_idx:
            return
        fs, ft = s_idx[0], t_idx[0]
        if fs < ft:
            # Something is scored first at this level (e.g. short documents without adaptation);
            # statements further down that both score and update still need their own order checked.
            for i in sorted(set(s_idx) & set(t_idx)):
                if self._descend(stmts[i], f, train_ids, score_ids, facts, loop_vars):
                    return
        if fs == ft:
            st = stmts[fs]
            if self._descend(st, f, train_ids, score_ids, facts, loop_vars):
                return
            later = [i for i in s_idx if i > fs and self._score_time(stmts, i) > fs]
            if later and isinstance(st, (ast.For, ast.While, ast.AsyncFor)):
                self.add("code.rescore", f.file, stmts[later[0]].lineno,
                         f"`{f.name}` scores validation tokens again after its adaptation loop (line {st.lineno}).")
            return
        if ft < fs and self._score_time(stmts, fs) >= ft:
            train_st = stmts[ft]
            if self._previous_chunk(train_st, loop_vars):
                return
            line = self._has(train_st, train_ids)[0].lineno
            if any(self._restores(stmts[j]) for j in range(ft + 1, fs)):
                self.add("code.val-warmup", f.file, line, f"`{f.name}` updates on validation tokens at line {line} before scoring at line {stmts[fs].lineno}.")
            elif self._throwaway(f, train_st, stmts[fs]):
                self.add("code.val-warmup", f.file, line,
                         f"`{f.name}` trains a throwaway copy/adapter on validation tokens at line {line}; the model "
                         f"that scores at line {stmts[fs].lineno} is not the one updated.")
            elif facts["reqgrad"] and loop_vars:
                self.add("code.slot", f.file, line,
                         f"`{f.name}` optimises a fresh requires_grad tensor at line {line} and then scores the same batch at line {stmts[fs].lineno}.")
            else:
                self.add("code.ttt-pre-eval", f.file, line,
                         f"`{f.name}` updates weights on validation tokens at line {line} before scoring them at line {stmts[fs].lineno}.")
            return
        later = [i for i in s_idx if i > ft and self._score_time(stmts, i) > ft]
        if later:
            self.add("code.rescore", f.file, stmts[later[0]].lineno,
                     f"`{f.name}` scores at line {stmts[fs].lineno}, updates at line {stmts[ft].lineno}, then scores again at line {stmts[later[0]].lineno}.")

    def _descend(self, st, f, train_ids, score_ids, facts, loop_vars) -> bool:
        """Check a statement that both scores and updates; True when it was reported whole."""
        lv = list(loop_vars)
        if isinstance(st, (ast.For, ast.AsyncFor)):
            tname = name_of(st.target) or ""
            if _EPOCH.match(tname) or "epoch" in ast.unparse(st.iter).lower():
                self.add("code.rescore", f.file, st.lineno,
                         f"`{f.name}` scores validation tokens inside the epoch loop `for {tname} ...`, so each target is scored once per epoch.")
                return True
            lv.append(tname)
        for part in ("body", "orelse", "finalbody"):
            sub = getattr(st, part, None)
            if isinstance(sub, list) and sub:
                self._order(sub, f, train_ids, score_ids, facts, lv)
        for h in getattr(st, "handlers", []) or []:
            self._order(h.body, f, train_ids, score_ids, facts, lv)
        return False

    @staticmethod
    def _previous_chunk(st, loop_vars) -> bool:
        for n in ast.walk(st):
            if isinstance(n, ast.Name) and ("prev" in n.id.lower() or "scored" in n.id.lower()):
                return True
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub) and isinstance(n.left, ast.Name) \
                    and n.left.id in loop_vars and isinstance(n.right, ast.Constant) and n.right.value == 1:
                return True
        return False

    @staticmethod
    def _restores(st) -> bool:
        for n in ast.walk(st):
            if isinstance(n, ast.Call):
                nm = (name_of(n.func) or "").lower()
                if nm == "load_state_dict" or "restore" in nm or nm == "copy_":
                    return True
        return False

    def _calibration(self, f: FuncInfo):
        extra = self.val_extra.get(id(f.node), set())
        for c in self._calls(f.node):
            nm = (name_of(c.func) or "").lower()
            if not CALIB.search(nm):
                continue
            for a in list(c.args) + [k.value for k in c.keywords]:
                got = self._val(f, f.file, a)
                if _is_val(a, extra) or got:
                    self.add("code.val-in-training", f.file, c.lineno,
                             f"`{name_of(c.func)}` (quantisation calibration) is given validation data.", got[1] if got else ())
                    break

    def _train_on_val_files(self):
        roots = [(file, tree, self.r.module_live) for file, tree in self.program.modules]
        roots += [(f.file, f.node, self.live) for f in self.r.reached]
        for cls in (n for _, t in self.program.modules for n in walk(t) if isinstance(n, ast.ClassDef)):
            roots.append((self.program.modules[0][0], cls, None))
        for file, root, live in roots:
            for n in _local(root):
                if live is not None and id(n) not in live:
                    continue
                if isinstance(n, (ast.Assign, ast.AnnAssign)):
                    targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                    names = [(name_of(t) or "").lower() for t in targets]
                    if any("train" in t and ("file" in t or "path" in t or "pattern" in t or "shard" in t or "loader" in t) for t in names) \
                            and n.value is not None and _mentions_val_file(n.value):
                        self.add("code.val-in-training", file, n.lineno, f"`{ast.unparse(targets[0])}` points the training data at validation files.")


def _callees(c: ast.Call) -> list[str]:
    """The function a call runs, and any function it is handed as a plain name to run
    (`timed_eval("final_slot", eval_val_slot, h, ...)`, `partial(fn, ...)`)."""
    return [name_of(c.func) or ""] + [name for name, _ in handed(c)]


def _loss_names(node: ast.AST) -> set[str]:
    """Variables a backward() runs on: `loss`, `(loss * scale)`, `(per_doc * mask).sum()`; not `model(x)`."""
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.BinOp):
        return _loss_names(node.left) | _loss_names(node.right)
    if isinstance(node, ast.UnaryOp):
        return _loss_names(node.operand)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _REDUCE_METHODS:
        return _loss_names(node.func.value)  # `(per_doc * mask).sum()`, not `F.cross_entropy(...)`
    return set()


_REDUCE_METHODS = {"sum", "mean", "float", "double", "squeeze", "reshape", "view", "to", "mul", "div", "clone",
                   "nansum", "nanmean", "flatten", "contiguous"}


def _mentions_val_file(node: ast.AST) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and ("fineweb_val" in n.value or re.search(r"(^|[/_*])val_\*", n.value)):
            return True
        if isinstance(n, (ast.Name, ast.Attribute)) and re.search(r"val_(files|pattern|path|shards)", (name_of(n) or "").lower()):
            return True
    return False


# ---------- entry points ----------

def scan_sources(sources: dict[str, str], entry: str = "train_gpt.py",
                 settings: list[dict[str, str]] | None = None,
                 printed: set[str] | None = None, also_run: Iterable[str] = ()) -> ScanReport:
    """Review `sources` (file name -> text); `entry` is the script that runs, and `also_run` names
    other scripts that may have run as programs (a folder without `train_gpt.py` that ships
    several): each is then reviewed as a program of its own.

    Every Python file given is reviewed (all of a bundle's modules run or can be imported). Each
    source is unwrapped first; a stub that runs a sibling (`exec(open("x.py").read())`) makes the
    sibling the entry. Findings are the union over the defaults and each logged configuration
    in `settings` (a finding only needs one configuration to be reachable). `printed` holds the
    metric labels the run's logs contain (`legal_ttt_exact`): a branch that prints one of them
    ran, even where the logged settings do not say so.
    """
    roots = [e for e in dict.fromkeys([entry, *also_run]) if e in sources]
    if len(roots) > 1:
        return _scan_programs(sources, roots, settings, printed)
    report = ScanReport(entry=entry)
    modules: list[tuple[str, ast.Module]] = []
    redirected: set[str] = set()
    for name, text in sources.items():
        siblings = {k: v for k, v in sources.items() if k != name}
        un = unwrap(text, siblings if "exec" in text else None)
        if un.layers:
            report.layers[name] = [l.codec for l in un.layers]
        if un.opaque_line is not None:
            report.findings.append(Finding("code.opaque", un.opaque_line, f"{un.opaque_reason}. {RULE_TEXT['code.opaque']}", name))
        if un.followed and un.source == sources.get(un.followed[-1]):
            # The stub only runs a shipped sibling: that file is the program (reviewed as itself).
            redirected.add(name)
            if name == entry:
                report.entry = entry = un.followed[-1]
            continue
        try:
            tree = un.tree if un.tree is not None else pysyntax.parse(un.source, filename=name)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            report.parse_errors[name] = f"{type(exc).__name__}: {getattr(exc, 'msg', exc)} (line {getattr(exc, 'lineno', '?')})"
            report.findings.append(Finding("code.opaque", getattr(exc, "lineno", None) or 1,
                                           f"{name} could not be parsed ({report.parse_errors[name]}), so it was not "
                                           f"reviewed. {RULE_TEXT['code.opaque']}", name))
            continue
        modules.append((name, tree))
        report.files.append(name)
    report.files += sorted(redirected)
    if not modules or entry not in dict(modules):
        return report
    modules.sort(key=lambda m: m[0] != entry)  # entry first
    program = Program(modules)
    trees = [t for _, t in modules]
    seen = set(report.findings)
    distinct, keys = [], set()
    for st in settings or []:  # seeds of one config differ only in per-run keys: analyse once
        key = frozenset((k, v) for k, v in st.items() if k not in PER_RUN_KEYS)
        if key not in keys:
            keys.add(key)
            distinct.append(dict(key))
    evidenced = evidenced_branches(trees, printed) if printed else set()
    analysed: list[tuple] = []
    # Settings read where no config field declares them (`getattr(args, "slot_enabled", False)`,
    # `args.ttt_on` with no default) also decide conditions: they are part of what is compared.
    idents = {(n.attr if isinstance(n, ast.Attribute) else n.value).lower()
              for t in trees for n in walk(t)
              if isinstance(n, ast.Attribute) or (isinstance(n, ast.Constant) and isinstance(n.value, str) and len(n.value) < 80)}
    for overrides in [None] + distinct:
        env = Env(trees, overrides, evidenced)
        # A logged configuration that only restates the defaults decides every condition the
        # same way: the analysis would repeat itself exactly.
        known = {k.lower() for k in env.consts} | {k.lower() for k in env.attrs}
        loose = sorted((k, v) for k, v in env.overrides.items() if k not in known and k in idents)
        if (env.consts, env.attrs, loose) in analysed:
            continue
        analysed.append((env.consts, env.attrs, loose))
        for fnd in _Analysis(program, env, {entry} | {m for m, _ in modules if m != entry}).run():
            if fnd not in seen:
                seen.add(fnd)
                report.findings.append(fnd)
    run = _run_modules(modules, entry)
    report.findings = [dataclasses.replace(f, standalone=True) if f.file not in run and f.file in dict(modules) else f
                       for f in report.findings]
    report.findings.sort(key=lambda f: (f.file != entry, f.file, f.line, f.rule))
    return report


def _scan_programs(sources: dict[str, str], roots: list[str], settings, printed) -> ScanReport:
    """Several scripts that may each have run: each is reviewed as its own program, with only the
    files it imports or runs. Analysed together, two independent scripts would share one name
    space, and a call in one would resolve to the other's function of the same name."""
    trees = []
    for name, text in sources.items():
        try:
            trees.append((name, pysyntax.parse(text, filename=name)))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue  # reviewed (and reported unparsable) in whichever part holds it
    report = ScanReport(entry=roots[0])
    covered: set[str] = set()
    parts = []
    for root in roots:
        run = _run_modules(trees, root) | {root}
        covered |= run
        parts.append((scan_sources({n: t for n, t in sources.items() if n in run}, entry=root, settings=settings,
                                   printed=printed), False))
    rest = {n: t for n, t in sources.items() if n not in covered}
    if rest:  # shipped, run by none of them: reviewed, and reported as standalone files
        parts.append((scan_sources(rest, entry=min(rest), settings=settings, printed=printed), True))
    seen: set[Finding] = set()
    for part, standalone in parts:
        for f in part.findings:
            f = dataclasses.replace(f, standalone=True) if standalone else f
            if f not in seen:
                seen.add(f)
                report.findings.append(f)
        report.files += [n for n in part.files if n not in report.files]
        report.layers |= part.layers
        report.parse_errors |= part.parse_errors
    report.findings.sort(key=lambda f: (f.file != report.entry, f.file, f.line, f.rule))
    return report


def _run_modules(modules: list[tuple[str, ast.Module]], entry: str) -> set[str]:
    """Files that take part in the run: the entry and, transitively, the bundle modules it
    imports, or names as a `.py` path (exec'd, run with `python x.py`, `runpy`)."""
    by_mod: dict[str, str] = {}
    for file, _ in modules:
        stem = file[:-3] if file.endswith(".py") else file
        dotted_name = stem.replace("/", ".")
        if dotted_name.endswith(".__init__"):
            dotted_name = dotted_name[: -len(".__init__")]
        by_mod[dotted_name] = file
        by_mod.setdefault(dotted_name.rsplit(".", 1)[-1], file)
    trees = dict(modules)
    seen, todo = {entry}, [entry]
    while todo:
        tree = trees.get(todo.pop())
        if tree is None:
            continue
        wanted: set[str] = set()
        for n in walk(tree):
            if isinstance(n, ast.Import):
                for a in n.names:
                    wanted |= {a.name, a.name.split(".")[0]}
            elif isinstance(n, ast.ImportFrom) and n.module:
                wanted |= {n.module, n.module.split(".")[0]} | {f"{n.module}.{a.name}" for a in n.names}
            elif isinstance(n, ast.ImportFrom):
                wanted |= {a.name for a in n.names}
            elif isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.endswith(".py"):
                wanted.add(n.value.rsplit("/", 1)[-1][:-3])
        for w in wanted:
            f = by_mod.get(w)
            if f and f not in seen:
                seen.add(f)
                todo.append(f)
    return seen


def scan_code(source: str, filename: str = "train_gpt.py") -> ScanReport:
    return scan_sources({filename: source}, entry=filename)


def scan_bundle(files: dict[str, bytes], entry: str = "train_gpt.py",
                settings: list[dict[str, str]] | None = None, printed: set[str] | None = None,
                also_run: Iterable[str] = ()) -> ScanReport:
    """Review every file of a submission (name -> bytes), the way CPython would read them.

    Python files are decoded through their PEP 263 cookie (`source.decode_source`), so code hidden
    by a UTF-7 declaration is the code reviewed; native sources and libraries get a finding for a
    human reviewer; every code file counts toward `code_bytes`."""
    texts: dict[str, str] = {}
    pre: list[Finding] = []
    for name, data in sorted(files.items()):
        if is_python(name):
            dec = decode_source(data)
            texts[name] = dec.text
            pre += [Finding(i.rule, i.line, f"{i.message} {RULE_TEXT[i.rule]}", name) for i in dec.issues]
        elif is_native(name):
            pre.append(Finding("code.native", 1, f"`{name}` is native code shipped with the submission. "
                                                 f"{RULE_TEXT['code.native']}", name))
    report = scan_sources(texts, entry=entry, settings=settings, printed=printed, also_run=also_run)
    seen = set(report.findings)
    report.findings = [f for f in pre if f not in seen] + report.findings
    report.findings.sort(key=lambda f: (f.file != report.entry, f.file, f.line, f.rule))
    report.code_files = {n: len(d) for n, d in sorted(files.items()) if is_code(n)}
    return report


_SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".ipynb_checkpoints"}
MAX_BUNDLE_FILES = 500


def folder_files(folder: Path, max_bytes: int = 64_000_000) -> dict[str, bytes]:
    """Every code file under `folder` (relative posix name -> bytes), as a bundle would ship it."""
    out: dict[str, bytes] = {}
    total = 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in _SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            continue
        if not path.is_file() or not is_code(rel.as_posix()):
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        total += len(data)
        if len(out) >= MAX_BUNDLE_FILES or total > max_bytes:
            break
        out[rel.as_posix()] = data
    return out


def folder_sources(folder: Path, entry: str = "train_gpt.py") -> dict[str, str]:
    """The Python files of `folder` decoded as CPython would (kept for callers that want text)."""
    return {n: decode_source(d).text for n, d in folder_files(folder).items() if is_python(n)}
