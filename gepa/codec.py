"""The safe artifact reader (and the matching writer): every submitted model enters here.

A file is size-capped, decompressed under a cap (`gepa.compress`), byte-unshuffled when it
carries the `BSHF` header, and its `torch.save` archive is checked (stored records only, one
pickle of bounded size) and its pickle scanned for globals outside a tensor allow-list before
`torch.load` sees it; `torch.load` then runs with `weights_only=True` as a second line of
defence. Files in the per-group layout (`PGRP`) are split by `gepa.containers.pergroup`, whose
inner streams pass through the same checks. Every failure is a typed `ArtifactError` with a
one-line message.

The loaded object is classified by content, not by file name:
- `clean`: the `__quant_format__` dict of the seed and baseline lineages (`gepa.containers.clean`);
- `gptq`: the `{"w": tensors, "m": meta}` dict of the SP4096/SP8192/CaseOps lineages
  (`gepa.containers.gptq`).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickletools
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from gepa import compress
from gepa.containers import pergroup
from gepa.errors import ArtifactFormatError, DecompressionLimitError, UnsafeArtifactError

DEFAULT_MAX_COMPRESSED = 64_000_000
DEFAULT_MAX_DECOMPRESSED = 512 * 2**20
MAX_PICKLE_BYTES = 8 << 20  # the largest real container's pickle is well under 100 KB
KINDS = ("clean", "gptq")
# Format tags of the clean container (seed and baseline lineages).
CLEAN_FORMATS = ("mixed_clean_per_row_v1", "int6_clean_per_row_v1", "int8_clean_per_row_v1")

_STORAGE_TYPES = ("Float", "Half", "BFloat16", "Char", "Byte", "Int", "Long", "Short", "Double",
                  "Bool")
SAFE_GLOBALS = frozenset(
    {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2")}
    | {("torch", f"{t}Storage") for t in _STORAGE_TYPES}
)


@dataclass
class Artifact:
    """A decoded artifact. `container` is the loaded dict; `kind` says which layout it has."""

    kind: str
    compression: str          # e.g. "zstd", "zlib", "xz", "brotli+bshf", "pergroup"
    compressed_bytes: int
    decompressed_bytes: int
    container: dict[str, Any]
    sha256: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def format(self) -> str:
        """The container's own format tag (clean) or a description of the layout (gptq)."""
        if self.kind == "clean":
            return str(self.container.get("__quant_format__"))
        return "gptq {w, m}"


# ----------------------------------------------------------------------------- reading

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


def scan_pickle(pkl: bytes) -> None:
    """Reject any global outside SAFE_GLOBALS, without executing anything."""
    recent: list[Any] = []  # values of the latest pure pushes; None = unknown
    memo: dict[int, Any] = {}
    try:
        for op, arg, _ in pickletools.genops(pkl):
            name = op.name
            if name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                _check_global(module, attr)
                recent.append(None)
            elif name == "STACK_GLOBAL":
                module, attr = (recent[-2], recent[-1]) if len(recent) >= 2 else (None, None)
                if not (isinstance(module, str) and isinstance(attr, str)):
                    raise UnsafeArtifactError(
                        "artifact pickle builds a global from computed names; not allowed")
                _check_global(module, attr)
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


def _check_global(module: str, attr: str) -> None:
    if (module, attr) not in SAFE_GLOBALS:
        raise UnsafeArtifactError(
            f"artifact pickle references {module}.{attr}, which is not allowed "
            "(only tensors, strings and dicts may be stored)")


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


def load_archive(raw: bytes) -> Any:
    """Load a decompressed `torch.save` archive after the structural and pickle checks."""
    _check_zip(raw)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's protocol/format chatter; errors still raise
            return torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
    except Exception as e:
        raise ArtifactFormatError(f"cannot load the artifact's tensors: {_one_line(e)}") from None


def _kind(obj: Any) -> str:
    if not isinstance(obj, dict):
        raise ArtifactFormatError(f"artifact holds a {type(obj).__name__}, expected a quantized "
                                  "container dict")
    if "__quant_format__" in obj:
        fmt = obj["__quant_format__"]
        if not isinstance(fmt, str) or fmt not in CLEAN_FORMATS:
            raise ArtifactFormatError(f"unknown artifact format {str(fmt)[:80]!r}; expected one of "
                                      f"{', '.join(CLEAN_FORMATS)}")
        return "clean"
    if isinstance(obj.get("w"), dict) and isinstance(obj.get("m"), dict):
        return "gptq"
    keys = ", ".join(sorted(str(k)[:40] for k in obj)[:8]) or "none"
    raise ArtifactFormatError(
        f"artifact container has neither a __quant_format__ tag nor the {{'w', 'm'}} layout (keys: {keys}); "
        "this verifier reads the seed/baseline and the GPTQ containers")


def read_artifact(source: str | Path | bytes, *, compressor: str | None = None,
                  max_compressed_bytes: int = DEFAULT_MAX_COMPRESSED,
                  max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED) -> Artifact:
    """Read, decompress (capped), unshuffle, scan and load an artifact. Never executes pickle
    code. `compressor` names the compressor when the submitter's config says which; otherwise it
    is detected."""
    data = _read_source(source, max_compressed_bytes)
    digest = hashlib.sha256(data).hexdigest()
    if data[:4] == pergroup.MAGIC:
        obj, raw_total = pergroup.decode(data, max_decompressed_bytes, load_archive)
        return Artifact(kind=_kind(obj), compression="pergroup", compressed_bytes=len(data),
                        decompressed_bytes=raw_total, container=obj, sha256=digest)
    raw, used = compress.decompress(data, max_decompressed_bytes, compressor)
    raw, shuffled = compress.byte_unshuffle(raw)
    obj = load_archive(raw)
    return Artifact(kind=_kind(obj), compression=used + ("+bshf" if shuffled else ""),
                    compressed_bytes=len(data), decompressed_bytes=len(raw), container=obj, sha256=digest)


# ----------------------------------------------------------------------------- writing

def serialize(obj: Mapping[str, Any], compression: str = "zstd", *, shuffle: bool = False) -> bytes:
    """torch.save into memory, optionally byte-shuffle, then compress (see `gepa.compress`)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    raw = buf.getvalue()
    if shuffle:
        raw = compress.byte_shuffle(raw)
    return compress.compress(raw, compression)


def write_artifact(path: str | Path, obj: Mapping[str, Any], compression: str = "zstd", *,
                   shuffle: bool = False) -> int:
    """Write atomically (temp file in the same directory, then rename); returns the byte count."""
    return write_bytes(path, serialize(obj, compression, shuffle=shuffle))


def write_bytes(path: str | Path, data: bytes) -> int:
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
