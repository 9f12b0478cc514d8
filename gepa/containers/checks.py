"""Checks every container layout applies to the tensors it hands out.

A submitted container is hostile until proven otherwise: a tensor must be a dense, contiguous CPU
tensor that owns the bytes it claims (a zero-stride view of a tiny storage can claim trillions of
elements), finite, and its key set and shapes must match what the configured model expects.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import torch

from gepa.errors import ArtifactContentError


def shape_str(t: torch.Tensor | Iterable[int]) -> str:
    dims = tuple(t.shape) if isinstance(t, torch.Tensor) else tuple(t)
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def dtype_str(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def check_tensor(where: str, name: Any, t: Any) -> None:
    if not isinstance(name, str):
        raise ArtifactContentError(f"{where} has a non-string key {type(name).__name__}")
    if type(t) is not torch.Tensor:
        raise ArtifactContentError(f"{where}[{name}] is a {type(t).__name__}, expected a tensor")
    if t.layout != torch.strided or t.device.type != "cpu":
        raise ArtifactContentError(f"{where}[{name}] is not a dense CPU tensor")
    if not t.is_contiguous() or t.numel() * t.element_size() > t.untyped_storage().nbytes():
        raise ArtifactContentError(f"{where}[{name}] is a strided view {shape_str(t)}, not a plain contiguous tensor")


def check_finite(name: str, t: torch.Tensor, what: str) -> None:
    if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
        raise ArtifactContentError(f"{what} of tensor {name} contains NaN or Inf")


def check_range(name: str, q: torch.Tensor, lo: int, hi: int) -> None:
    if q.numel():
        qmin, qmax = int(q.min()), int(q.max())
        if qmin < lo or qmax > hi:
            raise ArtifactContentError(f"quantized tensor {name} has values in [{qmin}, {qmax}], outside the "
                                       f"allowed range [{lo}, {hi}] of its scheme")


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")


def check_keys(have: Iterable[str], expected: Mapping[str, tuple]) -> None:
    """The artifact's tensor names must be exactly the model's."""
    have = list(have)
    missing = [k for k in expected if k not in set(have)]
    unexpected = [k for k in have if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s): {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s): {_names(unexpected)}")
        raise ArtifactContentError("artifact does not match the config's model: " + "; ".join(parts))


def check_shape(name: str, t: torch.Tensor | tuple[int, ...], spec: tuple) -> None:
    """`spec` is (shape, dtype) or (shape, dtype, why); `why` names the config key that decides."""
    got = tuple(t.shape) if isinstance(t, torch.Tensor) else tuple(t)
    want = tuple(spec[0])
    if got != want:
        why = f"config's {spec[2]}" if len(spec) > 2 and spec[2] else "config"
        raise ArtifactContentError(f"tensor {name} has shape {shape_str(got)} but the {why} needs {shape_str(want)}")


# ----------------------------------------------------------------------------- inspection

def nbytes(t: torch.Tensor) -> int:
    return int(t.numel()) * int(t.element_size())


def passthrough_scheme(t: torch.Tensor) -> str:
    short = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(dtype_str(t.dtype), dtype_str(t.dtype))
    return f"{short}_passthrough"


def tally(artifact: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The `inspect` document: the artifact's facts, its tensor rows and per-scheme totals."""
    totals: dict[str, dict[str, int]] = {}
    for r in rows:
        tot = totals.setdefault(r["scheme"], {"tensors": 0, "params": 0, "stored_bytes": 0})
        tot["tensors"] += 1
        tot["params"] += math.prod(r["shape"])
        tot["stored_bytes"] += r["stored_bytes"]
    return {"format": artifact.format, "kind": artifact.kind, "compression": artifact.compression,
            "compressed_bytes": artifact.compressed_bytes, "decompressed_bytes": artifact.decompressed_bytes,
            "sha256": artifact.sha256, "n_tensors": len(rows), "tensors": rows, "totals": totals}
