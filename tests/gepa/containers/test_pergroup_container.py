"""The #1855 per-group (lrzip) container: lossless against the brotli container, and hostile files.

Needs the `lrzip` program (Debian package lrzip, installed by `make test`)."""

from __future__ import annotations

import io
import shutil
import struct

import pytest
import torch

from gepa import codec
from gepa.containers import pergroup
from gepa.errors import ArtifactFormatError, DecompressionLimitError
import os
import pickle
from tests.support.artifacts import torch_zip_with_pickle
from gepa.errors import InputError

pytestmark = pytest.mark.skipif(shutil.which("lrzip") is None, reason="lrzip is not installed (make test installs it)")


def _save(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _obj() -> dict:
    g = torch.Generator().manual_seed(0)
    w, m = {}, {}
    for name, shape in [("tok_emb.weight", (40, 16))] + [(f"blocks.{i}.{part}", shape) for i in range(2) for part, shape in
                                                          [("attn.c_q.weight", (16, 16)), ("attn.c_k.weight", (8, 16)),
                                                           ("mlp.fc.weight", (32, 16)), ("mlp.proj.weight", (16, 32))]]:
        w[name + ".q"] = torch.randint(-31, 32, shape, generator=g, dtype=torch.int8)
        w[name + ".scale"] = torch.rand(shape[0], generator=g).to(torch.float16) + 0.01
        m[name] = "gptq (int6)"
    w["blocks.0.attn_scale"] = torch.ones(16, dtype=torch.float16)
    m["blocks.0.attn_scale"] = "passthrough (float16)"
    return {"w": w, "m": m}


@pytest.fixture(scope="module")
def encoded() -> tuple[dict, bytes]:
    obj = _obj()
    return obj, pergroup.encode(obj, _save)


def test_round_trip_gives_the_brotli_containers_object(encoded):
    obj, data = encoded
    art = codec.read_artifact(data)
    assert art.kind == "gptq" and art.compression == "pergroup"
    assert art.container["m"] == obj["m"]
    assert set(art.container["w"]) == set(obj["w"])
    assert all(torch.equal(art.container["w"][k], obj["w"][k]) for k in obj["w"])


def test_permutation_is_the_greedy_nearest_row_order():
    rows = torch.tensor([[0, 0], [9, 9], [1, 0], [8, 9]], dtype=torch.int8).numpy()
    assert pergroup.greedy_order(rows).tolist() == [0, 2, 3, 1]


def _streams(data: bytes) -> list[bytes]:
    return pergroup._split(data)


def _pack(streams: list[bytes]) -> bytes:
    return pergroup.MAGIC + struct.pack("<I", 9) + struct.pack("<9I", *map(len, streams)) + b"".join(streams)


def test_hostile_layouts(encoded):
    _, data = encoded
    streams = _streams(data)
    assert "ends inside its header" in _msg(data[:20])
    assert "do not add up" in _msg(data + b"x")
    bad_count = pergroup.MAGIC + struct.pack("<I", 7) + data[8:]
    assert "declares 7 streams" in _msg(bad_count)
    # A weight stream that is not lrzip at all.
    assert "not an lrzip archive" in _msg(_pack([b"JUNKJUNKJUNKJUNKJUNKJUNKJUNK"] + streams[1:]))
    # An lrzip stream whose declared size disagrees with the shapes (a bomb would declare more).
    forged = bytearray(streams[0])
    forged[6:14] = struct.pack("<Q", 1 << 40)
    assert "declares" in _msg(_pack([bytes(forged)] + streams[1:]))
    # Permutations that are not permutations.
    perms = codec.compress.compress(b"\x00\x00" * 200, "brotli")
    assert "permutation" in _msg(_pack(streams[:8] + [perms]))


def test_total_size_cap(encoded):
    _, data = encoded
    with pytest.raises(DecompressionLimitError):
        codec.read_artifact(data, max_decompressed_bytes=1000)


def _msg(data: bytes) -> str:
    with pytest.raises(ArtifactFormatError) as ei:
        codec.read_artifact(data)
    msg = str(ei.value)
    assert "\n" not in msg
    return msg


def test_hostile_side_and_weight_streams(encoded, tmp_path):
    """More of the hostile corpus: code in the side stream's pickle, a malformed shape table,
    weight bytes with no shapes, and an lrzip archive whose body is garbage."""
    _, data = encoded
    streams = _streams(data)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = codec.compress.compress(torch_zip_with_pickle(pickle.dumps(Evil(), protocol=2)), "brotli")
    msg = _msg_any(_pack(streams[:7] + [evil] + streams[8:]))
    assert not marker.exists() and msg
    bad_shapes = codec.compress.compress(_save({"r": {}, "m": {}, "s": {"mlp.fc.weight.q": [[32, "x"]]}}), "brotli")
    assert "shape list" in _msg(_pack(streams[:7] + [bad_shapes] + streams[8:]))
    no_shapes = codec.compress.compress(_save({"r": {}, "m": {}, "s": {}}), "brotli")
    assert "no shapes" in _msg(_pack(streams[:7] + [no_shapes, b""]))
    garbage = bytearray(streams[5])
    garbage[24:] = bytes(len(garbage) - 24)
    assert _msg(_pack(streams[:5] + [bytes(garbage)] + streams[6:]))


def _msg_any(data: bytes) -> str:
    with pytest.raises(InputError) as ei:
        codec.read_artifact(data)
    return str(ei.value)
