"""Hostile artifacts: every one is built here in code and must fail with a typed one-line error."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import zipfile
import zlib

import pytest
import torch
import zstandard

from gepa import codec
from gepa.compress import COMPRESSORS
from gepa.families.gepa.quantize import quantize_state_dict
from gepa.containers import clean
from gepa.errors import (
    ArtifactContentError,
    ArtifactError,
    ArtifactFormatError,
    DecompressionLimitError,
    UnsafeArtifactError,
)
from tests.support.artifacts import one_line, peak_during, torch_zip_with_pickle, zlib_bomb, zstd_bomb
from tests.support.paths import DATA

FIXTURE = DATA / "reference_small" / "final_model.int6.ptz"


def small_container() -> dict:
    g = torch.Generator().manual_seed(0)
    sd = {"blocks.0.attn.c_q.weight": torch.randn(300, 256, generator=g) * 0.05,
          "tok_emb.weight": (torch.randn(1024, 80, generator=g) * 0.05).to(torch.bfloat16),
          "blocks.0.mlp.scale": torch.ones(64), "blocks.0.attn_scale": torch.ones(64)}
    return quantize_state_dict(sd)


class Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.fixture()
def marker(tmp_path):
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "the artifact's pickle executed code"


def expect(exc_type, source, **kw):
    with pytest.raises(exc_type) as ei:
        codec.read_artifact(source, **kw)
    return one_line(ei.value)


# ---------------------------------------------------------------- stream level

def test_wrong_magic_and_empty_and_raw_torch_zip(tmp_path):
    assert "not a compressed artifact this verifier knows" in expect(ArtifactFormatError, b"GARBAGE!" * 10)
    assert "empty file" in expect(ArtifactFormatError, b"")
    raw = io.BytesIO()
    torch.save(small_container(), raw)
    assert "50 4b 03 04" in expect(ArtifactFormatError, raw.getvalue())  # uncompressed "PK.."
    assert "does not exist" in expect(ArtifactFormatError, tmp_path / "nope.ptz")
    assert "directory" in expect(ArtifactFormatError, tmp_path)


@pytest.mark.parametrize("compression", COMPRESSORS)
def test_truncated_artifacts(compression):
    blob = codec.serialize(small_container(), compression)
    for cut in (len(blob) - 1, len(blob) // 2, 12):
        msg = expect(ArtifactFormatError, blob[:cut])
        assert "truncated" in msg or "corrupt" in msg


@pytest.mark.parametrize("compression", ["zstd", "zlib"])
def test_trailing_garbage(compression):
    blob = codec.serialize(small_container(), compression)
    assert "trailing" in expect(ArtifactFormatError, blob + b"\x00junk")


def test_bit_flips_never_escape_as_raw_exceptions():
    blob = bytearray(FIXTURE.read_bytes())
    format_errors = 0
    for pos in range(6, len(blob), len(blob) // 31):
        flipped = bytearray(blob)
        flipped[pos] ^= 0x5A
        try:
            art = codec.read_artifact(bytes(flipped))
            clean.validate_container(art.container)
        except ArtifactError as e:
            one_line(e)
            format_errors += isinstance(e, ArtifactFormatError)
    assert format_errors > 0


def test_zlib_bit_flip_is_a_format_error():
    blob = bytearray(codec.serialize(small_container(), "zlib"))
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(ArtifactError) as ei:
        codec.read_artifact(bytes(blob))
    one_line(ei.value)


def test_compressed_size_cap(tmp_path):
    blob = FIXTURE.read_bytes()
    assert "over the 1,000-byte limit" in expect(DecompressionLimitError, blob, max_compressed_bytes=1000)
    p = tmp_path / "a.ptz"
    p.write_bytes(blob)
    expect(DecompressionLimitError, p, max_compressed_bytes=1000)


def test_declared_content_size_over_cap_is_rejected_early():
    blob = zstandard.ZstdCompressor(level=3).compress(bytes(1 << 20))
    assert "more than 100,000 bytes" in expect(DecompressionLimitError, blob,
                                               max_decompressed_bytes=100_000)


def test_zstd_bomb_is_stopped_with_bounded_memory():
    bomb = zstd_bomb(2 << 30)  # 2 GiB of zeros
    assert len(bomb) < 8 << 20
    assert zstandard.get_frame_parameters(bomb).content_size == zstandard.CONTENTSIZE_UNKNOWN

    def run():
        assert "decompresses to more than" in expect(DecompressionLimitError, bomb)

    assert peak_during(run) < 1 << 30  # default cap 512 MiB plus one piece
    small_cap = 32 << 20
    peak = peak_during(lambda: expect(DecompressionLimitError, bomb, max_decompressed_bytes=small_cap))
    assert peak < small_cap + (64 << 20)


def test_zlib_bomb_is_stopped_with_bounded_memory():
    bomb = zlib_bomb(1 << 30)
    assert len(bomb) < 4 << 20
    peak = peak_during(lambda: expect(DecompressionLimitError, bomb))
    assert peak < 1 << 30
    peak = peak_during(lambda: expect(DecompressionLimitError, bomb, max_decompressed_bytes=16 << 20))
    assert peak < (16 << 20) + (32 << 20)


# ---------------------------------------------------------------- pickle level

@pytest.mark.parametrize("compression", ["zstd", "zlib"])
def test_os_system_global_is_rejected_without_running(marker, compression):
    cmd = f"touch {marker}"
    # Hand-written protocol-2 pickle: GLOBAL 'os system', a string, TUPLE1, REDUCE.
    pkl = (b"\x80\x02cos\nsystem\nq\x00X" + len(cmd).to_bytes(4, "little") + cmd.encode()
           + b"\x85q\x01Rq\x02.")
    raw = torch_zip_with_pickle(pkl)
    blob = zstandard.ZstdCompressor(level=3).compress(raw) if compression == "zstd" else zlib.compress(raw)
    msg = expect(UnsafeArtifactError, blob)
    assert "os.system" in msg


@pytest.mark.parametrize("fn,name", [
    (os.system, "system"), (eval, "eval"), (subprocess.Popen, "Popen"),
    (getattr, "getattr")])
@pytest.mark.parametrize("protocol", [2, 4])
def test_dangerous_globals_are_rejected(marker, fn, name, protocol):
    arg = f"touch {marker}" if fn is os.system else (
        f"open({str(marker)!r}, 'w')" if fn is eval else ["touch", str(marker)])
    args = (arg,) if fn is not getattr else ("x", "join")
    pkl = pickle.dumps({"__quant_format__": "mixed_clean_per_row_v1", "x": Reduce(fn, args)},
                       protocol=protocol)
    blob = zstandard.ZstdCompressor().compress(torch_zip_with_pickle(pkl))
    msg = expect(UnsafeArtifactError, blob)
    # os.system pickles as posix.system on Linux; protocol 2 renames modules to their Python 2
    # names (__builtin__.eval, commands.Popen).
    assert name in msg


def test_stack_global_from_computed_names_is_rejected(marker):
    # Protocol 4 STACK_GLOBAL: plain, and with a POP between the pushes that hides which
    # strings are really on the stack; the scanner must refuse what it cannot resolve.
    pkl = b"\x80\x04\x8c\x08builtins\x94\x8c\x04eval\x94\x93."
    tricky = b"\x80\x04\x8c\x08builtins\x8c\x04eval2\x8c\x04eval0\x93."  # POP hides a name
    for p in (pkl, tricky):
        blob = zstandard.ZstdCompressor().compress(torch_zip_with_pickle(p))
        expect(UnsafeArtifactError, blob)


def test_protocol_4_torch_save_passes_the_scan_but_is_a_format_error():
    # The scan resolves protocol-4 STACK_GLOBALs to allowed names; torch's weights-only
    # unpickler then refuses the FRAME opcode, which must still surface as a typed error.
    buf = io.BytesIO()
    torch.save(small_container(), buf, pickle_protocol=4)
    msg = expect(ArtifactFormatError, zstandard.ZstdCompressor().compress(buf.getvalue()))
    assert msg.startswith("cannot load the artifact's tensors: ") and "149" in msg


def test_compressed_zip_record_is_rejected():
    buf = io.BytesIO()
    torch.save(small_container(), buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    msg = expect(ArtifactFormatError, zstandard.ZstdCompressor().compress(out.getvalue()))
    assert "compressed or encrypted" in msg


def test_not_a_dict_and_no_tag():
    assert "holds a list" in expect(ArtifactFormatError, codec.serialize([torch.zeros(1)]))
    assert "__quant_format__" in expect(ArtifactFormatError, codec.serialize({"quantized": {}}))


# ---------------------------------------------------------------- content level

def content_error(obj, expected=None, exc=ArtifactContentError) -> str:
    art = codec.read_artifact(codec.serialize(obj))
    with pytest.raises(exc) as ei:
        clean.validate_container(art.container, expected)
    with pytest.raises(exc):
        clean.load_state_dict(codec.read_artifact(codec.serialize(obj)), expected)
    return one_line(ei.value)


def test_unknown_format_tag_is_named():
    obj = small_container()
    obj["__quant_format__"] = "int4_packed_v9"
    assert "int4_packed_v9" in expect(ArtifactFormatError, codec.serialize(obj))
    with pytest.raises(ArtifactFormatError, match="int4_packed_v9"):
        clean.validate_container(obj)


def test_unknown_top_level_key():
    obj = small_container()
    obj["extra_payload"] = {"x": torch.zeros(1)}
    assert "extra_payload" in content_error(obj)


def test_missing_required_entry():
    obj = small_container()
    del obj["scales"]
    assert "'scales'" in content_error(obj)


def test_nan_in_passthrough_and_scales():
    obj = small_container()
    obj["passthrough"]["blocks.0.mlp.scale"][3] = float("nan")
    assert "blocks.0.mlp.scale" in content_error(obj) and "NaN" in content_error(obj)
    obj = small_container()
    obj["scales"]["blocks.0.attn.c_q.weight"][0] = float("inf")
    assert "NaN or Inf" in content_error(obj)
    obj = small_container()
    obj["scales"]["tok_emb.weight"] = torch.tensor(0.0, dtype=torch.float16)
    assert "zero or negative" in content_error(obj)


def test_int6_out_of_range():
    obj = small_container()
    obj["quantized"]["blocks.0.attn.c_q.weight"][5, 5] = 40
    msg = content_error(obj)
    assert "blocks.0.attn.c_q.weight" in msg and "[-32, 31]" in msg
    obj = small_container()
    obj["quantized"]["tok_emb.weight"][0, 0] = -128
    assert "[-127, 127]" in content_error(obj)


def test_wrong_dtypes_and_scale_shapes():
    obj = small_container()
    obj["quantized"]["blocks.0.attn.c_q.weight"] = obj["quantized"]["blocks.0.attn.c_q.weight"].short()
    assert "expected int8" in content_error(obj)
    obj = small_container()
    obj["scales"]["blocks.0.attn.c_q.weight"] = obj["scales"]["blocks.0.attn.c_q.weight"][:10]
    assert "(300,)" in content_error(obj)
    obj = small_container()
    obj["dtypes"]["blocks.0.attn.c_q.weight"] = "int64"
    assert "'int64'" in content_error(obj)
    obj = small_container()
    obj["passthrough_orig_dtypes"]["blocks.0.mlp.scale"] = "complex64"
    assert "complex64" in content_error(obj)


def test_non_tensor_values():
    obj = small_container()
    obj["passthrough"]["blocks.0.mlp.scale"] = [1.0, 2.0]
    assert "is a list, expected a tensor" in content_error(obj)


def test_wrong_shapes_against_expected():
    obj = small_container()
    sd = clean.dequantize(obj)
    expected = {k: (tuple(v.shape), v.dtype) for k, v in sd.items()}
    expected["blocks.0.attn.c_q.weight"] = ((256, 256), torch.float32, "num_heads=4")
    msg = content_error(obj, expected)
    assert msg == ("tensor blocks.0.attn.c_q.weight has shape (300, 256) but the config's "
                   "num_heads=4 needs (256, 256)")


def test_zero_stride_view_claiming_huge_shape_is_rejected():
    obj = small_container()
    obj["passthrough"]["blocks.0.mlp.scale"] = torch.zeros(1).expand(100_000, 100_000)
    assert "strided view (100000, 100000)" in content_error(obj)
    obj = small_container()
    q = obj["quantized"]["blocks.0.attn.c_q.weight"]
    obj["quantized"]["blocks.0.attn.c_q.weight"] = q[:1].expand(1_000_000, 256)
    obj["scales"]["blocks.0.attn.c_q.weight"] = torch.ones(1_000_000, dtype=torch.float16)
    assert "strided view" in content_error(obj)


def test_oversized_pickle_is_rejected():
    big = pickle.dumps({"__quant_format__": "x" * (9 << 20)}, protocol=2)
    blob = zstandard.ZstdCompressor().compress(torch_zip_with_pickle(big))
    assert "artifact pickle is" in expect(ArtifactFormatError, blob)
