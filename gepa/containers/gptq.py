"""The `{"w": tensors, "m": meta}` container of the SP4096, SP8192 and CaseOps lineages.

`m[name]` says how tensor `name` is stored in `w`:
- `"passthrough (float16)"` (and the SP4096 rows' `"passthrough"` / `"passthrough_ctrl"`):
  `w[name]` itself, cast to the model's dtype (so small fp32 tensors were rounded to fp16 once);
- `"gptq (intN)"` (and the SP4096 rows' `{"type": "int6"|"int8", ...}`): `w[name + ".q"]` int8
  of the weight's shape with |q| <= 2^(N-1) - 1, and `w[name + ".scale"]` fp16 per row;
  W = float32(q) * float32(scale)[row], then the model's dtype (bf16 for a tied embedding);
- `"gate_int8_row"`: `w[name + ".gq"]` int8 and `w[name + ".gs"]` fp16 per row, the same formula;
- `"gptq (intN)+lqer_asym"`: a GPTQ weight plus a rank-r correction A @ B with A = qA * sA
  (`.lqA_a` int8 in [-2, 1], `.lqAs_a` a 0-dim fp16) and B from `.lqB_a` (int8 in [-8, 7]) with
  one fp16 scale per group of 64 row-major elements (`.lqBs_a`);
- `"gptq (intN)+lqer"`: the symmetric form, A = qA * sA[row] and B = qB * sB[row] (`.lqA`,
  `.lqAs`, `.lqB`, `.lqBs`).

The caller supplies the template (name -> shape, dtype[, config key that decides the shape]) of
the model it will load; every template name must be described, and every stored tensor used.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from gepa.codec import Artifact
from gepa.containers.checks import (
    check_finite,
    check_keys,
    check_range,
    check_shape,
    check_tensor,
    dtype_str,
    nbytes,
    passthrough_scheme,
    shape_str,
    tally,
)
from gepa.errors import ArtifactContentError

_GPTQ = re.compile(r"^gptq \(int(\d+)\)(\+lqer_asym|\+lqer)?$")
LQER_GROUP = 64


def _meta_kind(name: str, meta: Any) -> tuple[str, int, str]:
    """(storage kind, bits, lqer variant) of one meta entry."""
    if isinstance(meta, str):
        if "passthrough" in meta:
            return "passthrough", 0, ""
        if meta == "gate_int8_row":
            return "gate", 8, ""
        m = _GPTQ.match(meta)
        if m and 2 <= int(m.group(1)) <= 8:
            return "gptq", int(m.group(1)), (m.group(2) or "").lstrip("+")
    elif isinstance(meta, dict) and meta.get("type") in ("int6", "int8", "int5", "int4"):
        return "gptq", int(str(meta["type"])[3:]), ""
    raise ArtifactContentError(f"tensor {name} has storage meta {str(meta)[:60]!r}, which this verifier does not know "
                               "(expected passthrough, gptq (intN), gate_int8_row or an LQER variant)")


class _Store:
    """The `w` dict, with a record of which entries were used."""

    def __init__(self, w: Mapping[str, Any]):
        self.w, self.used = w, set()

    def get(self, key: str, dtype: torch.dtype | None = None, ndim: int | None = None) -> torch.Tensor:
        if key not in self.w:
            raise ArtifactContentError(f"artifact lacks the stored tensor {key}")
        t = self.w[key]
        check_tensor("w", key, t)
        if dtype is not None and t.dtype != dtype:
            raise ArtifactContentError(f"stored tensor {key} is {dtype_str(t.dtype)}, expected {dtype_str(dtype)}")
        if ndim is not None and t.ndim != ndim:
            raise ArtifactContentError(f"stored tensor {key} has shape {shape_str(t)}, expected {ndim} dimension(s)")
        check_finite(key, t, "value")
        self.used.add(key)
        return t


def _row_scaled(store: _Store, name: str, qkey: str, skey: str, spec: tuple, lim: int) -> torch.Tensor:
    q = store.get(qkey, torch.int8)
    check_shape(name, q, spec)
    s = store.get(skey, torch.float16)
    check_range(name, q, -lim, lim)
    if s.ndim == 0:
        return q.float() * s.float()
    if tuple(s.shape) != (q.shape[0],):
        raise ArtifactContentError(f"scale of {name} has shape {shape_str(s)}, expected ({q.shape[0]},)")
    if s.numel() and not bool((s.float() > 0).all()):
        raise ArtifactContentError(f"scale of tensor {name} has a zero or negative entry")
    return q.float() * s.float().view(-1, *([1] * (q.ndim - 1)))


def _lqer(store: _Store, name: str, variant: str, shape: tuple) -> torch.Tensor:
    """The low-rank correction A @ B (fp32) of an LQER-corrected weight."""
    if len(shape) != 2:
        raise ArtifactContentError(f"tensor {name} carries an LQER correction but is not a matrix")
    rows, cols = shape
    if variant == "lqer_asym":
        qa = store.get(name + ".lqA_a", torch.int8, 2)
        sa = store.get(name + ".lqAs_a", torch.float16, 0)
        qb = store.get(name + ".lqB_a", torch.int8)
        sb = store.get(name + ".lqBs_a", torch.float16, 1)
        check_range(name + ".lqA_a", qa, -2, 1)
        check_range(name + ".lqB_a", qb, -8, 7)
        rank = qa.shape[1]
        if qa.shape[0] != rows or qb.numel() != rank * cols or rank * cols % LQER_GROUP \
                or sb.numel() != rank * cols // LQER_GROUP:
            raise ArtifactContentError(f"LQER factors of {name} do not fit a {rows}x{cols} weight")
        a = qa.float() * sa.float()
        b = (qb.reshape(-1, LQER_GROUP).float() * sb.float()[:, None]).reshape(rank, cols)
        return a @ b
    qa = store.get(name + ".lqA", torch.int8, 2)
    sa = store.get(name + ".lqAs", torch.float16, 1)
    qb = store.get(name + ".lqB", torch.int8, 2)
    sb = store.get(name + ".lqBs", torch.float16, 1)
    if qa.shape[0] != rows or qb.shape[1] != cols or qa.shape[1] != qb.shape[0] \
            or sa.numel() != rows or sb.numel() != qb.shape[0]:
        raise ArtifactContentError(f"LQER factors of {name} do not fit a {rows}x{cols} weight")
    return (qa.float() * sa.float()[:, None]) @ (qb.float() * sb.float()[:, None])


def validate(obj: Any) -> None:
    """Structure only: two dicts of tensors and strings (the rest is checked per template)."""
    if not isinstance(obj, dict) or set(obj) - {"w", "m"} or not isinstance(obj.get("w"), dict) \
            or not isinstance(obj.get("m"), dict):
        raise ArtifactContentError("a GPTQ container is a dict with exactly the entries 'w' (tensors) and 'm' (meta)")
    for name, meta in obj["m"].items():
        if not isinstance(name, str):
            raise ArtifactContentError(f"container meta has a non-string key {type(name).__name__}")
        _meta_kind(name, meta)


def dequantize(obj: Mapping[str, Any], template: Mapping[str, tuple]) -> dict[str, torch.Tensor]:
    """Rebuild every template tensor as the reference's `dequantize_mixed` does (template order)."""
    validate(obj)
    meta = obj["m"]
    check_keys(meta.keys(), template)
    store = _Store(obj["w"])
    out: dict[str, torch.Tensor] = {}
    for name, spec in template.items():
        shape, dtype = tuple(spec[0]), spec[1]
        kind, bits, lqer = _meta_kind(name, meta[name])
        if kind == "passthrough":
            t = store.get(name)
            check_shape(name, t, spec)
            out[name] = t.to(dtype) if t.is_floating_point() else t
            continue
        if kind == "gate":
            w = _row_scaled(store, name, name + ".gq", name + ".gs", spec, 127)
        else:
            w = _row_scaled(store, name, name + ".q", name + ".scale", spec, 2 ** (bits - 1) - 1)
            if lqer:
                w = w + _lqer(store, name, lqer, shape)
        out[name] = w.to(dtype).contiguous()
    leftover = sorted(set(obj["w"]) - store.used)
    if leftover:
        raise ArtifactContentError(f"artifact stores {len(leftover)} tensor(s) the model does not use: "
                                   + ", ".join(leftover[:5]) + (" ..." if len(leftover) > 5 else ""))
    return out


def stored_names(obj: Mapping[str, Any]) -> list[str]:
    """Model tensor names the container describes (meta order)."""
    return list(obj["m"])


def base_shape(obj: Mapping[str, Any], name: str) -> tuple[int, ...]:
    """The shape of model tensor `name` as stored (for config inference)."""
    w, meta = obj["w"], obj["m"][name]
    kind, _, _ = _meta_kind(name, meta)
    key = name if kind == "passthrough" else name + (".gq" if kind == "gate" else ".q")
    t = w.get(key)
    if type(t) is not torch.Tensor:
        raise ArtifactContentError(f"artifact lacks the stored tensor {key}")
    return tuple(t.shape)


def describe(artifact: Artifact) -> dict[str, Any]:
    """Per-tensor rows and per-scheme totals for `golfcheck inspect` (JSON-ready)."""
    w, rows = artifact.container["w"], []
    for name, meta in artifact.container["m"].items():
        kind, bits, lqer = _meta_kind(name, meta)
        keys = sorted(k for k in w if k == name or (k.startswith(name + ".") and "." not in k[len(name) + 1:]))
        stored = sum(nbytes(w[k]) for k in keys if type(w[k]) is torch.Tensor)
        if kind == "passthrough":
            t = w.get(name)
            scheme = passthrough_scheme(t) if type(t) is torch.Tensor else "passthrough"
        else:
            scheme = "gate_int8_row" if kind == "gate" else f"gptq_int{bits}" + (f"+{lqer}" if lqer else "")
        rows.append({"name": name, "shape": list(base_shape(artifact.container, name)), "scheme": scheme,
                     "meta": str(meta)[:60], "stored_bytes": stored})
    return tally(artifact, rows)
