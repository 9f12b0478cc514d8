"""The per-group container of the 2026-04-27 #1855 record (`COMPRESSOR=pergroup`).

Layout: `PGRP`, a uint32 LE stream count (9), the nine uint32 LE stream lengths, then the streams.
- Streams 0-6 hold the int8 GPTQ values of one weight group each (`GROUPS`: the embedding, then
  c_k, c_q, c_v, attention proj, MLP fc, MLP proj of every layer in order). Every matrix is stored
  transposed (column-major bytes); the embedding, c_q and fc matrices are first row-permuted. Each
  stream is an lrzip (ZPAQ) archive, decoded with the external `lrzip` under a file-size limit, a
  memory limit and a timeout.
- Stream 7 is brotli of `torch.save({"r": every other stored tensor, "m": meta, "s": {group:
  [shapes]}})`, read through the caller's safe archive loader.
- Stream 8 is brotli of the row permutations, uint16 LE, in group then layer order.
The result is the same `{"w", "m"}` object the plain brotli container holds, so scores from either
container are identical.
"""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gepa import compress
from gepa.errors import ArtifactFormatError, DecompressionLimitError

MAGIC = b"PGRP"
N_STREAMS = 9
GROUPS = ("tok_emb.weight.q", "attn.c_k.weight.q", "attn.c_q.weight.q", "attn.c_v.weight.q",
          "attn.proj.weight.q", "mlp.fc.weight.q", "mlp.proj.weight.q")
PERMUTED = ("tok_emb.weight.q", "attn.c_q.weight.q", "mlp.fc.weight.q")
LRZIP = "lrzip"
LRZIP_TIMEOUT_S = 900  # ZPAQ on a 16 MB model takes seconds to minutes; a hostile file gets no more
LRZIP_MEMORY = 4 << 30
_LRZIP_HEADER = 24  # magic, version, then the decoded size (8 bytes, little-endian)


def _tensor_name(group: str, layer: int) -> str:
    return group if group == GROUPS[0] else f"blocks.{layer}.{group}"


def _split(data: bytes) -> list[bytes]:
    if len(data) < 8 + 4 * N_STREAMS:
        raise ArtifactFormatError("per-group artifact ends inside its header")
    (count,) = struct.unpack_from("<I", data, 4)
    if count != N_STREAMS:
        raise ArtifactFormatError(f"per-group artifact declares {count} streams; the format has {N_STREAMS}")
    lengths = struct.unpack_from(f"<{N_STREAMS}I", data, 8)
    pos, out = 8 + 4 * N_STREAMS, []
    for n in lengths:
        out.append(data[pos:pos + n])
        pos += n
    if pos != len(data):
        raise ArtifactFormatError("per-group artifact's stream lengths do not add up to its size")
    return out


def _limits(cap: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))
        resource.setrlimit(resource.RLIMIT_AS, (LRZIP_MEMORY, LRZIP_MEMORY))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _lrzip(args: list[str], cap: int, cwd: str) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LRZIP": "NOCONFIG", "HOME": cwd, "TMPDIR": cwd}
    try:
        proc = subprocess.run([LRZIP, "-Q", "-f", "-N", "0", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=LRZIP_TIMEOUT_S, preexec_fn=_limits(cap))
    except FileNotFoundError:
        raise ArtifactFormatError("this artifact uses the per-group (lrzip) container, and the lrzip program is "
                                  "not installed on this verifier (Debian package lrzip)") from None
    except subprocess.TimeoutExpired:
        raise ArtifactFormatError(f"lrzip took longer than {LRZIP_TIMEOUT_S} s on one stream; not a plausible "
                                  "artifact") from None
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip().splitlines()
        raise ArtifactFormatError("lrzip could not decode a per-group stream" + (f": {msg[-1][:160]}" if msg else ""))


def _unlrzip(stream: bytes, expected: int, cap: int) -> bytes:
    if stream[:4] != b"LRZI" or len(stream) < _LRZIP_HEADER:
        raise ArtifactFormatError("a per-group weight stream is not an lrzip archive")
    (declared,) = struct.unpack_from("<Q", stream, 6)
    if declared != expected:
        raise ArtifactFormatError(f"a per-group weight stream declares {declared:,} bytes, but its shapes need "
                                  f"{expected:,}")
    if expected > cap:
        raise DecompressionLimitError(f"artifact decompresses to more than {cap:,} bytes (limit); "
                                      "it is not a plausible model")
    with tempfile.TemporaryDirectory(prefix="golfcheck-lrz-") as tmp:
        src, dst = Path(tmp, "g.lrz"), Path(tmp, "g.bin")
        src.write_bytes(stream)
        _lrzip(["-d", "-o", str(dst), str(src)], expected + 1, tmp)
        out = dst.read_bytes() if dst.exists() else b""
    if len(out) != expected:
        raise ArtifactFormatError(f"a per-group weight stream decoded to {len(out):,} bytes, expected {expected:,}")
    return out


def _shapes(side: Any) -> dict[str, list[tuple[int, int]]]:
    if not isinstance(side, dict):
        raise ArtifactFormatError("per-group side table is missing its shape list")
    out = {}
    for g in GROUPS:
        shapes = side.get(g, [])
        if not isinstance(shapes, (list, tuple)) or not all(
                isinstance(s, (list, tuple, torch.Size)) and len(s) == 2 and all(isinstance(d, int) and 0 < d < 1 << 20
                                                                                for d in s) for s in shapes):
            raise ArtifactFormatError(f"per-group shape list of {g} is not a list of (rows, cols)")
        out[g] = [tuple(s) for s in shapes]
    return out


def decode(data: bytes, cap: int, load_archive: Callable[[bytes], Any]) -> tuple[dict[str, Any], int]:
    """The `{"w", "m"}` object and the total decoded size; `load_archive` is the safe torch loader."""
    streams = _split(data)
    side_raw, _ = compress.decompress(streams[7], cap, "brotli")
    side = load_archive(side_raw)
    if not isinstance(side, dict) or not isinstance(side.get("r"), dict) or not isinstance(side.get("m"), dict):
        raise ArtifactFormatError("per-group side stream must hold the dicts 'r', 'm' and 's'")
    shapes = _shapes(side.get("s"))
    perm_raw = compress.decompress(streams[8], cap, "brotli")[0] if streams[8] else b""
    perms = np.frombuffer(perm_raw, dtype="<u2") if perm_raw else np.zeros(0, dtype="<u2")
    w: dict[str, Any] = dict(side["r"])
    total, perm_pos = len(side_raw) + len(perm_raw), 0
    for gi, group in enumerate(GROUPS):
        sizes = [r * c for r, c in shapes[group]]
        if not sizes:
            if streams[gi]:
                raise ArtifactFormatError(f"per-group stream of {group} has bytes but no shapes")
            continue
        raw = _unlrzip(streams[gi], sum(sizes), cap - total)
        total += len(raw)
        pos = 0
        for layer, ((rows, cols), n) in enumerate(zip(shapes[group], sizes, strict=True)):
            mat = np.frombuffer(raw, dtype=np.int8, count=n, offset=pos).reshape(cols, rows).T
            pos += n
            if group in PERMUTED:
                perm = perms[perm_pos:perm_pos + rows].astype(np.int64)
                perm_pos += rows
                if perm.size != rows or not np.array_equal(np.sort(perm), np.arange(rows)):
                    raise ArtifactFormatError(f"row permutation of {_tensor_name(group, layer)} is not a permutation")
                inv = np.empty_like(perm)
                inv[perm] = np.arange(rows)
                mat = mat[inv]
            name = _tensor_name(group, layer)
            if name in w:
                raise ArtifactFormatError(f"per-group artifact stores {name} twice")
            w[name] = torch.from_numpy(np.ascontiguousarray(mat))
    if perm_pos != perms.size:
        raise ArtifactFormatError("per-group artifact has row permutations left over")
    return {"w": w, "m": side["m"]}, total


# ----------------------------------------------------------------------------- writer (tests, demos)

def greedy_order(mat: np.ndarray) -> np.ndarray:
    """Row order: start at row 0, then repeatedly the unused row nearest (L1) to the last one."""
    rows = mat.shape[0]
    x = mat.astype(np.int32)
    order, used = [0], np.zeros(rows, dtype=bool)
    used[0] = True
    for _ in range(rows - 1):
        d = np.abs(x - x[order[-1]]).sum(axis=1)
        d[used] = np.iinfo(np.int64).max if d.dtype == np.int64 else np.iinfo(d.dtype).max
        nxt = int(np.argmin(d))
        order.append(nxt)
        used[nxt] = True
    return np.asarray(order, dtype=np.int64)


def encode(obj: dict[str, Any], save: Callable[[Any], bytes], workdir: str | None = None) -> bytes:
    """Write `obj` ({"w", "m"}) in the per-group layout; `save` is torch.save into bytes."""
    w, groups, shapes, perms = dict(obj["w"]), [], {}, []
    for group in GROUPS:
        names = [group] if group == GROUPS[0] else sorted(
            (k for k in w if k.startswith("blocks.") and k.endswith("." + group)),
            key=lambda k: int(k.split(".")[1]))
        parts, shapes[group] = [], []
        for name in names:
            if name not in w:
                continue
            mat = w.pop(name).numpy()
            if group in PERMUTED:
                order = greedy_order(mat)
                perms.append(order.astype("<u2").tobytes())
                mat = mat[order]
            shapes[group].append(tuple(int(d) for d in mat.shape))
            parts.append(np.ascontiguousarray(mat.T).tobytes())
        groups.append(b"".join(parts))
    streams = []
    with tempfile.TemporaryDirectory(prefix="golfcheck-lrz-", dir=workdir) as tmp:
        for raw in groups:
            if not raw:
                streams.append(b"")
                continue
            src, dst = Path(tmp, "g.bin"), Path(tmp, "g.bin.lrz")
            src.write_bytes(raw)
            _lrzip(["-z", "-L", "9", "-o", str(dst), str(src)], 1 << 31, tmp)
            streams.append(dst.read_bytes())
    streams.append(compress.compress(save({"r": w, "m": obj["m"], "s": shapes}), "brotli"))
    streams.append(compress.compress(b"".join(perms), "brotli") if perms else b"")
    header = MAGIC + struct.pack("<I", N_STREAMS) + struct.pack(f"<{N_STREAMS}I", *(len(s) for s in streams))
    return header + b"".join(streams)
