"""The `__quant_format__` container of the seed (GEPA) and baseline lineages.

A plain dict: `__quant_format__` (a format tag), `quantized` (int8 tensors), `scales` (fp16 per
row, or a 0-dim per-tensor scale), `dtypes` (each quantized tensor's original dtype),
`passthrough` (tensors kept as float), and optionally `qmeta` (per-tensor scheme) and
`passthrough_orig_dtypes` (dtype a down-cast passthrough tensor returns to). Dequantization is
`q * scale` in fp32, cast to the recorded dtype (so a bf16 embedding is rounded to bf16).

`validate_container` checks structure, dtypes, value ranges and finiteness, and with `expected`
the key set and shapes, so a config that does not match the tensors fails with a message naming
the tensor and, where the family provides it, the config key that decides its shape.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from gepa.codec import CLEAN_FORMATS, Artifact
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
from gepa.errors import ArtifactContentError, ArtifactFormatError

KNOWN_FORMATS = CLEAN_FORMATS
FORMAT_MIXED, FORMAT_INT6, FORMAT_INT8 = CLEAN_FORMATS

_TOP_KEYS = ("__quant_format__", "quantized", "scales", "dtypes", "passthrough", "qmeta",
             "passthrough_orig_dtypes")
_REQUIRED_KEYS = _TOP_KEYS[:5]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# The baseline quantizer clamps to ±127, but lineages that post-process its int8 values (e.g. the
# 10-layer record rounding them to multiples of 4) reach -128; the whole int8 range dequantizes fine.
INT8_MIN = -128


def _bad(msg: str) -> ArtifactContentError:
    return ArtifactContentError(msg)


def _section(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    sec = obj.get(key, {})
    if not isinstance(sec, dict):
        raise _bad(f"container entry {key!r} is a {type(sec).__name__}, expected a dict")
    return sec


def _per_row(name: str, scale: torch.Tensor, meta: Mapping[str, Any] | None) -> bool:
    return (meta or {}).get("scheme") == "per_row" or scale.ndim > 0


def validate_container(obj: Any, expected: Mapping[str, tuple] | None = None) -> None:
    """Check structure, dtypes, ranges and finiteness; with `expected`, the key set and shapes.

    `expected` maps name -> (shape, dtype) or (shape, dtype, why); `why` (e.g.
    "num_kv_heads=4") is quoted in shape errors so the submitter knows which setting decides.
    """
    if not isinstance(obj, dict):
        raise ArtifactFormatError("artifact is not a container dict")
    for key in obj:
        if key not in _TOP_KEYS:
            raise ArtifactContentError(f"unknown top-level key {str(key)[:80]!r} in the artifact "
                                       f"container (allowed: {', '.join(_TOP_KEYS)})")
    for key in _REQUIRED_KEYS:
        if key not in obj:
            raise ArtifactContentError(f"artifact container lacks the {key!r} entry")
    fmt = obj["__quant_format__"]
    if not isinstance(fmt, str) or fmt not in KNOWN_FORMATS:
        raise ArtifactFormatError(f"unknown artifact format {str(fmt)[:80]!r}; expected one of "
                                  f"{', '.join(KNOWN_FORMATS)}")
    quantized, scales, dtypes = _section(obj, "quantized"), _section(obj, "scales"), _section(obj, "dtypes")
    passthrough, qmeta = _section(obj, "passthrough"), _section(obj, "qmeta")
    orig = _section(obj, "passthrough_orig_dtypes")

    for name, q in quantized.items():
        check_tensor("quantized", name, q)
        if q.dtype != torch.int8:
            raise _bad(f"quantized tensor {name} has dtype {str(q.dtype).removeprefix('torch.')}, "
                       "expected int8")
        if name not in scales:
            raise _bad(f"quantized tensor {name} has no scale")
        if name not in dtypes:
            raise _bad(f"quantized tensor {name} has no recorded dtype")
        if name in passthrough:
            raise _bad(f"tensor {name} is both quantized and passthrough")
        s = scales[name]
        check_tensor("scales", name, s)
        d = dtypes[name]
        if not isinstance(d, str) or d not in DTYPES:
            raise _bad(f"tensor {name} records dtype {str(d)[:40]!r}; allowed: float32, bfloat16, float16")
        meta = qmeta.get(name)
        if meta is not None and (not isinstance(meta, dict)
                                 or meta.get("scheme") not in ("per_row", "per_tensor")):
            raise _bad(f"qmeta for {name} must be a dict with scheme per_row or per_tensor")
        if _per_row(name, s, meta):
            if q.ndim < 1 or s.dtype != torch.float16 or tuple(s.shape) != (q.shape[0],):
                raise _bad(f"per-row scale of {name} must be float16 with shape "
                           f"{shape_str(q.shape[:1])}, got {str(s.dtype).removeprefix('torch.')} "
                           f"{shape_str(s)}")
            lo, hi = (INT8_MIN, 127) if fmt == FORMAT_INT8 else (-32, 31)
        else:
            if s.ndim != 0 or s.dtype not in (torch.float16, torch.float32):
                raise _bad(f"per-tensor scale of {name} must be a 0-dim float16/float32 tensor, "
                           f"got {str(s.dtype).removeprefix('torch.')} {shape_str(s)}")
            int8 = fmt == FORMAT_INT8 or (meta or {}).get("quant_type") == "int8"
            lo, hi = ((INT8_MIN if fmt == FORMAT_INT8 else -127), 127) if int8 else (-32, 31)
        check_finite(name, s, "scale")
        if s.numel() and not bool((s.float() > 0).all()):
            raise _bad(f"scale of tensor {name} has a zero or negative entry")
        check_range(name, q, lo, hi)
    for name in list(scales) + list(dtypes) + list(qmeta):
        if name not in quantized:
            raise _bad(f"scale/dtype/qmeta entry {str(name)[:120]} has no quantized tensor")
    for name, t in passthrough.items():
        check_tensor("passthrough", name, t)
        check_finite(name, t, "passthrough value")
    for name, d in orig.items():
        if name not in passthrough:
            raise _bad(f"passthrough_orig_dtypes names {str(name)[:120]}, which is not a passthrough tensor")
        if not isinstance(d, str) or d not in DTYPES:
            raise _bad(f"passthrough tensor {name} records dtype {str(d)[:40]!r}; allowed: "
                       "float32, bfloat16, float16")

    if expected is not None:
        _check_expected(quantized, passthrough, expected)


def _check_expected(quantized: Mapping[str, torch.Tensor], passthrough: Mapping[str, torch.Tensor],
                    expected: Mapping[str, tuple]) -> None:
    check_keys(list(quantized) + list(passthrough), expected)
    for name, spec in expected.items():
        check_shape(name, quantized.get(name, passthrough.get(name)), spec)


def dequantize(obj: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Reconstruct float tensors: quantized ones first, then passthrough (container order)."""
    out: dict[str, torch.Tensor] = {}
    qmeta = obj.get("qmeta", {}) or {}
    orig = obj.get("passthrough_orig_dtypes", {}) or {}
    for name, q in obj["quantized"].items():
        dtype = DTYPES[obj["dtypes"][name]]
        s = obj["scales"][name]
        if _per_row(name, s, qmeta.get(name)):
            view = s.float().view(q.shape[0], *([1] * (q.ndim - 1)))
            out[name] = (q.float() * view).to(dtype).contiguous()
        else:
            out[name] = (q.float() * float(s.item())).to(dtype).contiguous()
    for name, t in obj["passthrough"].items():
        t = t.detach().to("cpu").contiguous()
        if isinstance(orig.get(name), str):
            t = t.to(DTYPES[orig[name]]).contiguous()
        out[name] = t
    return out


def load_state_dict(art: Artifact, expected: Mapping[str, tuple] | None = None) -> dict[str, torch.Tensor]:
    """validate_container + dequantize; ordered like `expected` when given."""
    if art.kind != "clean":
        raise ArtifactFormatError(f"artifact is a {art.kind} container, not a __quant_format__ one")
    validate_container(art.container, expected)
    sd = dequantize(art.container)
    if expected is not None:
        sd = {k: sd[k] for k in expected}
    return sd


def _scheme(obj: Mapping[str, Any], name: str) -> str:
    s = obj["scales"][name]
    meta = (obj.get("qmeta") or {}).get(name)
    if _per_row(name, s, meta):
        return "int8_per_row" if obj["__quant_format__"] == FORMAT_INT8 else "int6_per_row"
    if (meta or {}).get("quant_type") == "int8" or obj["__quant_format__"] == FORMAT_INT8:
        return "int8_per_tensor"
    return "int6_per_tensor"


def describe(artifact: Artifact) -> dict[str, Any]:
    """Per-tensor rows and per-scheme totals for `golfcheck inspect` (JSON-ready)."""
    obj = artifact.container
    rows = []
    for name, q in obj["quantized"].items():
        rows.append({"name": name, "shape": list(q.shape), "scheme": _scheme(obj, name),
                     "dtype": obj["dtypes"][name],
                     "stored_bytes": nbytes(q) + nbytes(obj["scales"][name])})
    orig = obj.get("passthrough_orig_dtypes") or {}
    for name, t in obj["passthrough"].items():
        stored = dtype_str(t.dtype)
        rows.append({"name": name, "shape": list(t.shape), "scheme": passthrough_scheme(t),
                     "dtype": orig.get(name, stored), "stored_bytes": nbytes(t)})
    return tally(artifact, rows)
