"""The artifact container: the reference's mixed int6/int8 quantizer and writer, and a safe reader.

Format (spec §4): a plain dict saved with `torch.save` and compressed with zstd level 22 (one
frame, content size recorded) or zlib level 9. Keys: `__quant_format__`, `quantized` (int8
tensors), `scales`, `dtypes`, `passthrough`, and optionally `qmeta` and
`passthrough_orig_dtypes`.

The reader is a security boundary: a submitted file is size-capped before and while it is
decompressed, its pickle is scanned for globals outside a tensor allow-list before `torch.load`
ever sees it, and `torch.load` then runs with `weights_only=True` as a second line of defence.
Every failure surfaces as a typed `ArtifactError` with a one-line message.
"""

from __future__ import annotations

import io
import math
import os
import pickletools
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from gepa.errors import (
    ArtifactContentError,
    ArtifactFormatError,
    DecompressionLimitError,
    UnsafeArtifactError,
)

FORMAT_MIXED = "mixed_clean_per_row_v1"
FORMAT_INT6 = "int6_clean_per_row_v1"
FORMAT_INT8 = "int8_clean_per_row_v1"
KNOWN_FORMATS = (FORMAT_MIXED, FORMAT_INT6, FORMAT_INT8)

KEEP_FLOAT_MAX_NUMEL = 65_536
CONTROL_PATTERNS = (
    "attn_scale", "attn_scales", "mlp_scale", "mlp_scales", "resid_mix", "resid_mixes", "q_gain",
    "skip_weight", "skip_weights", "smear_gate", "bigram", "skip_gates", "ve_shared",
    "ve_layer_scales",
)
CLIP_PERCENTILES = (0.999, 0.9995, 0.9999, 0.99999, 1.0)
FALLBACK_CLIP_Q = 0.9999984

DEFAULT_MAX_COMPRESSED = 64_000_000
DEFAULT_MAX_DECOMPRESSED = 512 * 2**20
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_PICKLE_BYTES = 8 << 20  # the full-size container's pickle is ~30 KB
_PIECE = 1 << 20
# Tiny zstd input slices bound the output of one decompress() call: an RLE block costs a few
# bytes and expands to 128 KiB, so 256 input bytes yield at most ~8 MiB past the cap.
_ZSTD_INPUT_SLICE = 256

_TOP_KEYS = ("__quant_format__", "quantized", "scales", "dtypes", "passthrough", "qmeta",
             "passthrough_orig_dtypes")
_REQUIRED_KEYS = _TOP_KEYS[:5]
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_STORAGE_TYPES = ("Float", "Half", "BFloat16", "Char", "Byte", "Int", "Long", "Short", "Double",
                  "Bool")
SAFE_GLOBALS = frozenset(
    {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2")}
    | {("torch", f"{t}Storage") for t in _STORAGE_TYPES}
)


# ----------------------------------------------------------------------------- quantizer

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


# ----------------------------------------------------------------------------- writer

def serialize(obj: Mapping[str, Any], compression: str = "zstd") -> bytes:
    """torch.save into memory, then zstd-22 (one frame with content size) or zlib-9."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    raw = buf.getvalue()
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=22).compress(raw)
    if compression == "zlib":
        return zlib.compress(raw, 9)
    raise ValueError(f"unknown compression {compression!r} (use 'zstd' or 'zlib')")


def write_artifact(path: str | Path, obj: Mapping[str, Any], compression: str = "zstd") -> int:
    """Write atomically (temp file in the same directory, then rename); returns the byte count."""
    data = serialize(obj, compression)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; published files should be world-readable
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(data)


# ----------------------------------------------------------------------------- reader

@dataclass
class Artifact:
    format: str
    compression: str
    compressed_bytes: int
    decompressed_bytes: int
    container: dict[str, Any]


def _read_source(source: str | Path | bytes, cap: int) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > cap:
                raise DecompressionLimitError(
                    f"artifact {path.name} is {size:,} bytes, over the {cap:,}-byte limit")
            with open(path, "rb") as f:
                data = f.read(cap + 1)
        except FileNotFoundError:
            raise ArtifactFormatError(f"artifact file {path} does not exist") from None
        except IsADirectoryError:
            raise ArtifactFormatError(f"artifact path {path} is a directory, not a file") from None
        except OSError as e:
            raise ArtifactFormatError(f"cannot read artifact {path}: {e.strerror}") from None
    if len(data) > cap:
        raise DecompressionLimitError(
            f"artifact is {len(data):,} bytes, over the {cap:,}-byte limit")
    return data


def _too_big(cap: int) -> DecompressionLimitError:
    return DecompressionLimitError(
        f"artifact decompresses to more than {cap:,} bytes (limit); it is not a plausible model")


def _decompress_zstd(data: bytes, cap: int) -> bytes:
    import zstandard

    try:
        params = zstandard.get_frame_parameters(data)
    except zstandard.ZstdError as e:
        raise ArtifactFormatError(f"corrupt zstd frame header: {e}") from None
    if params.content_size not in (0, zstandard.CONTENTSIZE_UNKNOWN) and params.content_size > cap:
        raise _too_big(cap)
    dobj = zstandard.ZstdDecompressor(max_window_size=1 << 27).decompressobj()
    out: list[bytes] = []  # pieces, joined once: a growing bytearray would copy on realloc
    total = 0
    try:
        for i in range(0, len(data), _ZSTD_INPUT_SLICE):
            piece = dobj.decompress(data[i:i + _ZSTD_INPUT_SLICE])
            out.append(piece)
            total += len(piece)
            if total > cap:
                out.clear()
                raise _too_big(cap)
            if dobj.eof:
                if i + _ZSTD_INPUT_SLICE < len(data) or dobj.unused_data:
                    raise ArtifactFormatError("trailing bytes after the zstd frame")
                break
    except zstandard.ZstdError as e:
        raise ArtifactFormatError(f"corrupt zstd stream: {e}") from None
    if not dobj.eof:
        raise ArtifactFormatError("zstd stream ends early (truncated artifact)")
    return b"".join(out)


def _decompress_zlib(data: bytes, cap: int) -> bytes:
    dobj = zlib.decompressobj()
    out: list[bytes] = []
    total = 0
    try:
        chunk = dobj.decompress(data, _PIECE)
        while True:
            out.append(chunk)
            total += len(chunk)
            if total > cap:
                out.clear()
                raise _too_big(cap)
            if not dobj.unconsumed_tail:
                break
            chunk = dobj.decompress(dobj.unconsumed_tail, _PIECE)
    except zlib.error as e:
        raise ArtifactFormatError(f"corrupt zlib stream: {e}") from None
    if not dobj.eof:
        raise ArtifactFormatError("zlib stream ends early (truncated artifact)")
    if dobj.unused_data:
        raise ArtifactFormatError("trailing bytes after the zlib stream")
    return b"".join(out)


def _detect(data: bytes) -> str:
    if data[:4] == ZSTD_MAGIC:
        return "zstd"
    if len(data) >= 2 and data[0] == 0x78 and (data[0] * 256 + data[1]) % 31 == 0:
        return "zlib"
    head = data[:4].hex(" ") if data else "empty file"
    raise ArtifactFormatError(
        f"not a zstd or zlib artifact (first bytes: {head}); compress the torch.save output "
        "with zstd level 22 or zlib level 9")


def scan_pickle(pkl: bytes) -> None:
    """Reject any global outside SAFE_GLOBALS, without executing anything."""
    recent: list[Any] = []  # values of the latest pure pushes; None = unknown
    memo: dict[int, Any] = {}
    try:
        for op, arg, _ in pickletools.genops(pkl):
            name = op.name
            if name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                if (module, attr) not in SAFE_GLOBALS:
                    raise UnsafeArtifactError(
                        f"artifact pickle references {module}.{attr}, which is not allowed "
                        "(only tensors, strings and dicts may be stored)")
                recent.append(None)
            elif name == "STACK_GLOBAL":
                module, attr = (recent[-2], recent[-1]) if len(recent) >= 2 else (None, None)
                if not (isinstance(module, str) and isinstance(attr, str)):
                    raise UnsafeArtifactError(
                        "artifact pickle builds a global from computed names; not allowed")
                if (module, attr) not in SAFE_GLOBALS:
                    raise UnsafeArtifactError(
                        f"artifact pickle references {module}.{attr}, which is not allowed "
                        "(only tensors, strings and dicts may be stored)")
                recent.append(None)
            elif name.startswith("EXT"):
                raise UnsafeArtifactError("artifact pickle uses the copyreg extension registry; "
                                          "not allowed")
            elif name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE",
                          "SHORT_BINSTRING", "BINSTRING", "STRING"):
                recent.append(arg)
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = recent[-1] if recent else None
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                recent.append(memo.get(arg))
            elif name in ("PROTO", "FRAME"):
                pass
            else:
                recent.append(None)
            if len(recent) > 64:
                del recent[:-8]
    except UnsafeArtifactError:
        raise
    except Exception as e:  # genops raises ValueError and friends on malformed pickles
        raise ArtifactFormatError(f"malformed pickle in artifact: {_one_line(e)}") from None


def _check_zip(raw: bytes) -> None:
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        infos = zf.infolist()
    except Exception as e:
        raise ArtifactFormatError(
            f"decompressed artifact is not a torch.save archive: {_one_line(e)}") from None
    pkls = [i for i in infos if i.filename.endswith("/data.pkl") or i.filename == "data.pkl"]
    if len(pkls) != 1:
        raise ArtifactFormatError("torch.save archive must hold exactly one data.pkl")
    total = 0
    for info in infos:
        # torch.save stores records uncompressed; anything else could hide a second bomb.
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise ArtifactFormatError(f"archive record {info.filename} is compressed or encrypted;"
                                      " torch.save never writes that")
        total += info.file_size
    if total > len(raw):
        raise ArtifactFormatError("archive records claim more bytes than the archive holds")
    if pkls[0].file_size > MAX_PICKLE_BYTES:
        raise ArtifactFormatError(f"artifact pickle is {pkls[0].file_size:,} bytes; a container "
                                  f"needs a few kilobytes (limit {MAX_PICKLE_BYTES:,})")
    try:
        pkl = zf.read(pkls[0])
    except Exception as e:
        raise ArtifactFormatError(f"cannot read data.pkl: {_one_line(e)}") from None
    scan_pickle(pkl)


def _one_line(e: BaseException) -> str:
    text = [line.strip() for line in str(e).strip().splitlines()]
    # torch wraps weights-only refusals in a long generic preamble; keep the actual reason.
    for i, line in enumerate(text):
        if "WeightsUnpickler error:" in line:
            rest = [t for t in [line.split("WeightsUnpickler error:", 1)[1].strip()] + text[i + 1:] if t]
            if rest:
                return rest[0][:200]
    text = [t for t in text if t]
    msg = text[0] if text else type(e).__name__
    return msg[:200]


def read_artifact(source: str | Path | bytes, *, max_compressed_bytes: int = DEFAULT_MAX_COMPRESSED,
                  max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED) -> Artifact:
    """Read, decompress (capped), scan and load an artifact. Never executes pickle code."""
    data = _read_source(source, max_compressed_bytes)
    compression = _detect(data)
    if compression == "zstd":
        raw = _decompress_zstd(data, max_decompressed_bytes)
    else:
        raw = _decompress_zlib(data, max_decompressed_bytes)
    _check_zip(raw)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's protocol/format chatter; errors still raise
            obj = torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
    except Exception as e:
        raise ArtifactFormatError(f"cannot load the artifact's tensors: {_one_line(e)}") from None
    if not isinstance(obj, dict):
        raise ArtifactFormatError(f"artifact holds a {type(obj).__name__}, expected the "
                                  "quantized container dict")
    fmt = obj.get("__quant_format__")
    if not isinstance(fmt, str):
        raise ArtifactFormatError("artifact container has no __quant_format__ tag")
    if fmt not in KNOWN_FORMATS:
        raise ArtifactFormatError(f"unknown artifact format {fmt[:80]!r}; expected one of "
                                  f"{', '.join(KNOWN_FORMATS)}")
    return Artifact(format=fmt, compression=compression, compressed_bytes=len(data),
                    decompressed_bytes=len(raw), container=obj)


# ----------------------------------------------------------------------------- validation

def _shape(t: torch.Tensor | tuple[int, ...]) -> str:
    dims = tuple(t.shape) if isinstance(t, torch.Tensor) else tuple(t)
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def _bad(msg: str) -> ArtifactContentError:
    return ArtifactContentError(msg)


def _check_tensor(where: str, name: Any, t: Any) -> None:
    if not isinstance(name, str):
        raise _bad(f"{where} has a non-string key {type(name).__name__}")
    if type(t) is not torch.Tensor:
        raise _bad(f"{where}[{name}] is a {type(t).__name__}, expected a tensor")
    if t.layout != torch.strided or t.device.type != "cpu":
        raise _bad(f"{where}[{name}] is not a dense CPU tensor")
    # A zero-stride view of a tiny storage can claim trillions of elements; every later pass
    # (range checks, dequantization) would then hang or exhaust memory.
    if not t.is_contiguous() or t.numel() * t.element_size() > t.untyped_storage().nbytes():
        raise _bad(f"{where}[{name}] is a strided view {_shape(t)}, not a plain contiguous tensor")


def _finite(name: str, t: torch.Tensor, what: str) -> None:
    if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
        raise _bad(f"{what} of tensor {name} contains NaN or Inf")


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
        _check_tensor("quantized", name, q)
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
        _check_tensor("scales", name, s)
        d = dtypes[name]
        if not isinstance(d, str) or d not in _DTYPES:
            raise _bad(f"tensor {name} records dtype {str(d)[:40]!r}; allowed: float32, bfloat16, float16")
        meta = qmeta.get(name)
        if meta is not None and (not isinstance(meta, dict)
                                 or meta.get("scheme") not in ("per_row", "per_tensor")):
            raise _bad(f"qmeta for {name} must be a dict with scheme per_row or per_tensor")
        if _per_row(name, s, meta):
            if q.ndim < 1 or s.dtype != torch.float16 or tuple(s.shape) != (q.shape[0],):
                raise _bad(f"per-row scale of {name} must be float16 with shape "
                           f"{_shape(q.shape[:1])}, got {str(s.dtype).removeprefix('torch.')} "
                           f"{_shape(s)}")
            lo, hi = (-127, 127) if fmt == FORMAT_INT8 else (-32, 31)
        else:
            if s.ndim != 0 or s.dtype not in (torch.float16, torch.float32):
                raise _bad(f"per-tensor scale of {name} must be a 0-dim float16/float32 tensor, "
                           f"got {str(s.dtype).removeprefix('torch.')} {_shape(s)}")
            int8 = fmt == FORMAT_INT8 or (meta or {}).get("quant_type") == "int8"
            lo, hi = (-127, 127) if int8 else (-32, 31)
        _finite(name, s, "scale")
        if s.numel() and not bool((s.float() > 0).all()):
            raise _bad(f"scale of tensor {name} has a zero or negative entry")
        if q.numel():
            qmin, qmax = int(q.min()), int(q.max())
            if qmin < lo or qmax > hi:
                raise _bad(f"quantized tensor {name} has values in [{qmin}, {qmax}], outside the "
                           f"allowed range [{lo}, {hi}] of its scheme")
    for name in list(scales) + list(dtypes) + list(qmeta):
        if name not in quantized:
            raise _bad(f"scale/dtype/qmeta entry {str(name)[:120]} has no quantized tensor")
    for name, t in passthrough.items():
        _check_tensor("passthrough", name, t)
        _finite(name, t, "passthrough value")
    for name, d in orig.items():
        if name not in passthrough:
            raise _bad(f"passthrough_orig_dtypes names {str(name)[:120]}, which is not a passthrough tensor")
        if not isinstance(d, str) or d not in _DTYPES:
            raise _bad(f"passthrough tensor {name} records dtype {str(d)[:40]!r}; allowed: "
                       "float32, bfloat16, float16")

    if expected is not None:
        _check_expected(quantized, passthrough, expected)


def _check_expected(quantized: Mapping[str, torch.Tensor], passthrough: Mapping[str, torch.Tensor],
                    expected: Mapping[str, tuple]) -> None:
    have = list(quantized) + list(passthrough)
    missing = [k for k in expected if k not in quantized and k not in passthrough]
    unexpected = [k for k in have if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s): {', '.join(missing[:5])}"
                         + (" ..." if len(missing) > 5 else ""))
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s): {', '.join(unexpected[:5])}"
                         + (" ..." if len(unexpected) > 5 else ""))
        raise _bad("artifact does not match the config's model: " + "; ".join(parts))
    for name, spec in expected.items():
        t = quantized.get(name, passthrough.get(name))
        want = tuple(spec[0])
        if tuple(t.shape) != want:
            why = f"config's {spec[2]}" if len(spec) > 2 and spec[2] else "config"
            raise _bad(f"tensor {name} has shape {_shape(t)} but the {why} needs {_shape(want)}")


# ----------------------------------------------------------------------------- dequantization

def dequantize(obj: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Reconstruct float tensors: quantized ones first, then passthrough (container order)."""
    out: dict[str, torch.Tensor] = {}
    qmeta = obj.get("qmeta", {}) or {}
    orig = obj.get("passthrough_orig_dtypes", {}) or {}
    for name, q in obj["quantized"].items():
        dtype = _DTYPES[obj["dtypes"][name]]
        s = obj["scales"][name]
        if _per_row(name, s, qmeta.get(name)):
            view = s.float().view(q.shape[0], *([1] * (q.ndim - 1)))
            out[name] = (q.float() * view).to(dtype).contiguous()
        else:
            out[name] = (q.float() * float(s.item())).to(dtype).contiguous()
    for name, t in obj["passthrough"].items():
        t = t.detach().to("cpu").contiguous()
        if isinstance(orig.get(name), str):
            t = t.to(_DTYPES[orig[name]]).contiguous()
        out[name] = t
    return out


def load_state_dict(source: str | Path | bytes | Artifact,
                    expected: Mapping[str, tuple] | None = None, **caps: int) -> dict[str, torch.Tensor]:
    """read_artifact + validate_container + dequantize; ordered like `expected` when given."""
    art = source if isinstance(source, Artifact) else read_artifact(source, **caps)
    validate_container(art.container, expected)
    sd = dequantize(art.container)
    if expected is not None:
        sd = {k: sd[k] for k in expected}
    return sd


# ----------------------------------------------------------------------------- inspection

def _scheme(obj: Mapping[str, Any], name: str) -> str:
    s = obj["scales"][name]
    meta = (obj.get("qmeta") or {}).get(name)
    if _per_row(name, s, meta):
        return "int8_per_row" if obj["__quant_format__"] == FORMAT_INT8 else "int6_per_row"
    if (meta or {}).get("quant_type") == "int8" or obj["__quant_format__"] == FORMAT_INT8:
        return "int8_per_tensor"
    return "int6_per_tensor"


def _nbytes(t: torch.Tensor) -> int:
    return int(t.numel()) * int(t.element_size())


def describe(artifact: Artifact) -> dict[str, Any]:
    """Per-tensor rows and per-scheme totals for `golfcheck inspect` (JSON-ready)."""
    obj = artifact.container
    rows = []
    for name, q in obj["quantized"].items():
        rows.append({"name": name, "shape": list(q.shape), "scheme": _scheme(obj, name),
                     "dtype": obj["dtypes"][name],
                     "stored_bytes": _nbytes(q) + _nbytes(obj["scales"][name])})
    orig = obj.get("passthrough_orig_dtypes") or {}
    for name, t in obj["passthrough"].items():
        stored = str(t.dtype).removeprefix("torch.")
        short = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(stored, stored)
        rows.append({"name": name, "shape": list(t.shape), "scheme": f"{short}_passthrough",
                     "dtype": orig.get(name, stored), "stored_bytes": _nbytes(t)})
    totals: dict[str, dict[str, int]] = {}
    for r in rows:
        tot = totals.setdefault(r["scheme"], {"tensors": 0, "params": 0, "stored_bytes": 0})
        tot["tensors"] += 1
        tot["params"] += math.prod(r["shape"])
        tot["stored_bytes"] += r["stored_bytes"]
    return {"format": artifact.format, "compression": artifact.compression,
            "compressed_bytes": artifact.compressed_bytes,
            "decompressed_bytes": artifact.decompressed_bytes,
            "n_quantized": len(obj["quantized"]), "n_passthrough": len(obj["passthrough"]),
            "tensors": rows, "totals": totals}
