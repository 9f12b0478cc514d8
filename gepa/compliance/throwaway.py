"""Throwaway copies: training on validation tokens that cannot change the scored model.

A function that builds a fresh copy of the model or a new adapter (`copy.deepcopy(model)`,
`LoRA(...)`, a probe layer), trains only that on validation tokens and then drops it (neither
returned, stored, handed to a scorer nor loaded back into the model) leaves the base weights as
they were: the review reports it as a `code.val-warmup` warning instead of `code.ttt-pre-eval`.

`Throwaway` is a mixin of `review._Analysis`: it uses the analysis' reach (`self.r`) and
`self.facts` (which functions score).
"""

from __future__ import annotations

import ast
import re

from gepa.compliance.reach import FuncInfo, dotted, own_nodes
from gepa.compliance.review_names import name_of

_local = own_nodes  # nodes of a subtree without nested function/class bodies (cached per node)

_MOVE_METHODS = {"to", "cuda", "cpu", "float", "bfloat16", "half", "train", "eval", "requires_grad_"}


class Throwaway:
    """Fresh copies/adapters of a function and whether its updates only touch them (mixin of `_Analysis`)."""

    def _throwaway(self, f: FuncInfo, train_st, score_st) -> bool:
        fresh = self._fresh(f.node)
        used = {x.id for x in ast.walk(train_st) if isinstance(x, ast.Name)}
        scored = {x.id for x in ast.walk(score_st) if isinstance(x, ast.Name)}
        return bool(fresh & used) and not (fresh & scored) and self._discards(f.node)

    @staticmethod
    def _fresh(fn) -> set[str]:
        """Names bound in `fn` to a copy of a model or a new adapter (`copy.deepcopy(model)`, `LoRA(...)`)."""
        out = set()
        for n in _local(fn):
            if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call):
                call = n.value
                # `BatchedTTTLoRA(...).to(device)`: the object is the innermost constructor's.
                while isinstance(call.func, ast.Attribute) and call.func.attr in _MOVE_METHODS \
                        and isinstance(call.func.value, ast.Call):
                    call = call.func.value
                callee = (dotted(call.func) or name_of(call.func) or "").lower()
                # A layer built here (`probe = nn.Linear(d, vocab)`) is a fresh probe, not the model.
                if re.search(r"deepcopy|\bcopy$|lora|adapter|clone_model|(^|\.)nn\.(linear|sequential|bilinear)$", callee):
                    out |= {t.id for t in n.targets if isinstance(t, ast.Name)}
        return out

    def _discards(self, fn) -> bool:
        """Updates in `fn` only touch a fresh copy/adapter that is neither returned nor stored."""
        fresh = self._fresh(fn)
        if not fresh:
            return False
        opts = [n for n in _local(fn) if isinstance(n, ast.Call) and re.search(r"adam|sgd|optim|muon|lion", (name_of(n.func) or "").lower())]
        if not opts or not all(any(isinstance(x, ast.Name) and x.id in fresh for x in ast.walk(o)) for o in opts):
            return False
        scorers = {g.name for g in self.r.reached if self.facts[id(g.node)]["scores"]}
        for n in _local(fn):
            if isinstance(n, ast.Return) and n.value is not None and any(isinstance(x, ast.Name) and x.id in fresh for x in ast.walk(n.value)):
                return False
            if isinstance(n, ast.Call) and name_of(n.func) in scorers and any(
                    isinstance(x, ast.Name) and x.id in fresh for a in n.args for x in ast.walk(a)):
                return False  # the trained object is the one that scores
            if isinstance(n, ast.Call) and (name_of(n.func) or "") == "load_state_dict" and \
                    any(isinstance(x, ast.Name) and x.id in fresh for a in n.args for x in ast.walk(a)):
                return False  # the trained copy is written back into the model
        return True
