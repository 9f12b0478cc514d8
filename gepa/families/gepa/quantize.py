"""The seed submission's quantizer: mixed int6/int8 per-row GPTQ-lite into the clean container.

Used to write artifacts exactly as the reference does (demos, tests, benchmarks): matrices of MLP
and attention blocks get per-row int6 with the clip percentile that minimises the tensor's MSE
(1/31 scale floor), other large tensors per-tensor int8, and tensors with at most 65,536 elements
stay float (control tensors fp32, the rest fp16 with their original dtype recorded).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from gepa.containers.clean import FORMAT_INT6, FORMAT_INT8, FORMAT_MIXED

KEEP_FLOAT_MAX_NUMEL = 65_536
CONTROL_PATTERNS = (
    "attn_scale", "attn_scales", "mlp_scale", "mlp_scales", "resid_mix", "resid_mixes", "q_gain",
    "skip_weight", "skip_weights", "smear_gate", "bigram", "skip_gates", "ve_shared",
    "ve_layer_scales",
)
CLIP_PERCENTILES = (0.999, 0.9995, 0.9999, 0.99999, 1.0)
FALLBACK_CLIP_Q = 0.9999984


def _classify(name: str) -> str:
    if "tok_emb" in name or "lm_head" in name:
        return "embed"
    if ".mlp." in name:
        return "mlp"
    if ".attn." in name or ".proj." in name:
        return "attn"
    return "other"


def _keep_float(name: str, t: torch.Tensor, orig_dtypes: dict[str, str]) -> torch.Tensor:
    if any(p in name for p in CONTROL_PATTERNS):
        return t.float().contiguous()
    if t.dtype in (torch.float32, torch.bfloat16):
        orig_dtypes[name] = str(t.dtype).removeprefix("torch.")
        return t.to(torch.float16).contiguous()
    return t


def _quantize_int8_per_tensor(t32: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    amax = float(t32.abs().max().item()) if t32.numel() else 0.0
    scale = torch.tensor(amax / 127.0 if amax > 0 else 1.0, dtype=torch.float16)
    q = torch.clamp(torch.round(t32 / float(scale)), -127, 127).to(torch.int8)
    return q.contiguous(), scale


def _row_quantile(sorted_rows: torch.Tensor, p: float) -> torch.Tensor:
    """torch.quantile(x, p, dim=1) (linear) on pre-sorted rows, with the same float32 arithmetic."""
    n = sorted_rows.shape[1]
    rank = torch.tensor(p, dtype=sorted_rows.dtype) * (n - 1)
    below = rank.to(torch.long)
    above = torch.ceil(rank).to(torch.long)
    weight = rank - below
    lo = sorted_rows[:, int(below)]
    hi = sorted_rows[:, min(int(above), n - 1)]
    return torch.lerp(lo, hi, weight.expand_as(lo))


def _quantize_per_row(t32: torch.Tensor, qmax: int) -> tuple[torch.Tensor, torch.Tensor]:
    """GPTQ-lite: one clip percentile per tensor, chosen by whole-tensor MSE (ties: earlier)."""
    qmin = -(qmax + 1) if qmax == 31 else -qmax
    a = t32.abs()
    # One sort serves every candidate; torch.quantile would re-sort the tensor per call.
    sorted_abs = torch.sort(a, dim=1).values
    best: tuple[float, torch.Tensor, torch.Tensor] | None = None
    for p in CLIP_PERCENTILES:
        clip = a.amax(dim=1) if p == 1.0 else _row_quantile(sorted_abs, p)
        scale = torch.clamp_min(clip / qmax, 1.0 / qmax)
        q = torch.clamp(torch.round(t32 / scale[:, None]), qmin, qmax)
        err = float(((q * scale[:, None] - t32) ** 2).mean().item())
        if best is None or err < best[0]:
            best = (err, q, scale)
    assert best is not None
    return best[1].to(torch.int8).contiguous(), best[2].to(torch.float16).contiguous()


def _quantize_fallback(t32: torch.Tensor, qmax: int) -> tuple[torch.Tensor, torch.Tensor]:
    qmin = -(qmax + 1) if qmax == 31 else -qmax
    flat = t32.abs().flatten()
    clip = float(torch.quantile(flat, FALLBACK_CLIP_Q).item()) if flat.numel() else 0.0
    scale = torch.tensor(clip / qmax if clip > 0 else 1.0, dtype=torch.float32)
    q = torch.clamp(torch.round(torch.clamp(t32, -clip, clip) / scale), qmin, qmax)
    return q.to(torch.int8).contiguous(), scale


def quantize_state_dict(state_dict: Mapping[str, torch.Tensor], *, mixed: bool = True,
                        quant_embed: bool = True, int8_storage: bool = False) -> dict[str, Any]:
    """Build the container exactly as the reference's `quantize_state_dict_int6` does."""
    quantized: dict[str, torch.Tensor] = {}
    scales: dict[str, torch.Tensor] = {}
    dtypes: dict[str, str] = {}
    passthrough: dict[str, torch.Tensor] = {}
    orig_dtypes: dict[str, str] = {}
    qmeta: dict[str, dict[str, Any]] = {}
    qmax = 127 if int8_storage else 31
    for name, tensor in state_dict.items():
        t = tensor.detach().to("cpu").contiguous()
        if not t.is_floating_point():
            passthrough[name] = t
            continue
        if t.numel() <= KEEP_FLOAT_MAX_NUMEL or (name == "tok_emb.weight" and not quant_embed):
            passthrough[name] = _keep_float(name, t, orig_dtypes)
            continue
        t32 = t.float()
        if mixed and _classify(name) not in ("mlp", "attn"):
            q, s = _quantize_int8_per_tensor(t32)
            qmeta[name] = {"scheme": "per_tensor", "quant_type": "int8"}
        elif t32.ndim == 2:
            q, s = _quantize_per_row(t32, qmax)
            qmeta[name] = {"scheme": "per_row", "axis": 0}
        else:
            q, s = _quantize_fallback(t32, qmax)
        quantized[name], scales[name] = q, s
        dtypes[name] = str(t.dtype).removeprefix("torch.")
    fmt = FORMAT_MIXED if mixed else (FORMAT_INT8 if int8_storage else FORMAT_INT6)
    obj: dict[str, Any] = {"__quant_format__": fmt, "quantized": quantized, "scales": scales,
                           "dtypes": dtypes, "passthrough": passthrough}
    if qmeta:
        obj["qmeta"] = qmeta
    if orig_dtypes:
        obj["passthrough_orig_dtypes"] = orig_dtypes
    return obj
