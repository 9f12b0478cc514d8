"""Hostile corpus for the sp8192 container: byte shuffle + brotli (or xz) around the GPTQ
{"w", "m"} dict. Bombs stop at the cap with bounded memory, truncation and corrupt headers are
one-line format errors, and damaged tensors are rejected by name before any model is built."""

from __future__ import annotations

import brotli
import lzma

import pytest
import torch

from api.cli.main import main
from gepa import codec, compress, runner
from gepa.errors import ArtifactError, ArtifactFormatError, DecompressionLimitError, InputError
from gepa.families.sp8192.family import FAMILY
from tests.support.artifacts import peak_during
from tests.support.paths import REPO

ROOT = REPO
FIX = ROOT / "tests" / "data" / "sp8192_small"
ART = FIX / "final_model.int6.ptz"
CONFIG = FIX / "eval_standard.json"


def one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert msg and "\n" not in msg and len(msg) < 400
    return msg


def fast_brotli(data: bytes) -> bytes:
    return brotli.compress(data, quality=1)  # the decoder does not care; quality 11 is slow


def _bomb(make, total: int) -> bytes:
    zeros = bytes(16 << 20)
    parts = [make.process(zeros) if hasattr(make, "process") else make.compress(zeros)
             for _ in range(total // len(zeros))]
    parts.append(make.finish() if hasattr(make, "finish") else make.flush())
    return b"".join(parts)


@pytest.mark.parametrize("kind", ["brotli", "xz"])
def test_bombs_stop_at_the_cap_with_bounded_memory(kind):
    if kind == "brotli":
        bomb = _bomb(brotli.Compressor(quality=1), 1 << 30)  # 1 GiB of zeros in ~200 KB
    else:
        bomb = _bomb(lzma.LZMACompressor(preset=1), 128 << 20)
    cap = 16 << 20

    def run():
        with pytest.raises(DecompressionLimitError) as ei:
            codec.read_artifact(bomb, max_decompressed_bytes=cap)
        assert "decompresses to more than 16,777,216 bytes" in one_line(ei.value)

    assert peak_during(run) < cap + (32 << 20)


def test_truncated_and_corrupt_fixture_is_a_format_error(cfg):
    blob = ART.read_bytes()
    for cut in (len(blob) - 1, len(blob) // 2, 100, 3):
        with pytest.raises(ArtifactFormatError) as ei:
            codec.read_artifact(blob[:cut])
        one_line(ei.value)
    for pos in range(10, len(blob), len(blob) // 23):
        flipped = bytearray(blob)
        flipped[pos] ^= 0x5A
        try:
            art = codec.read_artifact(bytes(flipped))
            FAMILY.load_state(art, cfg)
        except InputError as e:
            one_line(e)


def test_byte_shuffle_headers():
    # The magic alone: the header ends early.
    with pytest.raises(ArtifactFormatError, match="5-byte header"):
        codec.read_artifact(compress.compress(b"BSHF", "brotli"))
    raw = compress.byte_unshuffle(compress.decompress(ART.read_bytes(), 1 << 30)[0])[0]
    assert raw[:2] == b"PK"
    # A stride below 2 means "not shuffled": the payload is used as is.
    art = codec.read_artifact(fast_brotli(b"BSHF\x01" + raw))
    assert art.compression == "brotli+bshf" and FAMILY.sniff(art)
    # A header that lies about the stride scrambles the archive: a format error, never a crash.
    shuffled = compress.byte_shuffle(raw, 2)
    wrong = shuffled[:4] + bytes([3]) + shuffled[5:]
    with pytest.raises(ArtifactFormatError) as ei:
        codec.read_artifact(fast_brotli(wrong))
    one_line(ei.value)
    # The same container without the shuffle, and in xz (COMPRESSOR=lzma), is read the same.
    for blob, name in ((fast_brotli(raw), "brotli"), (lzma.compress(raw, preset=1), "xz")):
        other = codec.read_artifact(blob)
        assert other.compression == name and FAMILY.sniff(other)


@pytest.fixture(scope="module")
def container():
    return codec.read_artifact(ART).container


@pytest.fixture(scope="module")
def cfg():
    return runner.prepare(ART, CONFIG).cfg


def _damaged(container, damage) -> codec.Artifact:
    """A decoded artifact whose container is damaged (a copy: the module's container stays intact)."""
    obj = {"w": {k: v.clone() for k, v in container["w"].items()}, "m": dict(container["m"])}
    damage(obj)
    return codec.Artifact(kind="gptq", compression="brotli+bshf", compressed_bytes=0, decompressed_bytes=0,
                          container=obj)


FC = "blocks.0.mlp.fc.weight"


@pytest.mark.parametrize("damage, needle", [
    (lambda o: o["w"].__setitem__(FC + ".q", torch.zeros(575, 144, dtype=torch.int8)), "sp8192_mlp_mult"),
    (lambda o: o["w"].__setitem__("blocks.1.mlp.fc.weight.q", torch.zeros(576, 143, dtype=torch.int8)),
     "blocks.1.mlp.fc.weight has shape (576, 143)"),
    (lambda o: o["w"].__setitem__(FC + ".scale", torch.ones(575, dtype=torch.float16)), "scale of " + FC),
    (lambda o: o["w"][FC + ".q"].__setitem__((0, 0), 40), "outside the allowed range [-31, 31]"),
    (lambda o: o["w"]["tok_emb.weight.q"].__setitem__((0, 0), -128), "outside the allowed range [-127, 127]"),
    (lambda o: o["w"]["blocks.0.attn_scale"].__setitem__(0, float("nan")), "NaN or Inf"),
    (lambda o: o["w"].pop("blocks.2.attn.proj.weight"), "lacks the stored tensor blocks.2.attn.proj.weight"),
    (lambda o: o["w"].__setitem__("blocks.0.attn.c_q.weight", torch.zeros(144, 144, dtype=torch.int8)),
     "int8"),
])
def test_damaged_tensors_are_rejected_by_name(container, cfg, damage, needle):
    art = _damaged(container, damage)
    with pytest.raises(ArtifactError if "mlp_mult" not in needle else InputError) as ei:
        FAMILY.load_state(art, cfg)
    assert needle in one_line(ei.value)


def test_damaged_container_through_the_cli_exits_2_with_one_line(container, tmp_path, capsys):
    art = _damaged(container, lambda o: o["w"][FC + ".q"].__setitem__((0, 0), 40))
    path = tmp_path / "final_model.int6.ptz"
    path.write_bytes(codec.serialize(art.container, "brotli", shuffle=True))
    rc = main(["evaluate", str(path), "--config", str(CONFIG), "--val", str(FIX / "fineweb_val_000000.bin")])
    out, err = capsys.readouterr()
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and FC in lines[0] and "Traceback" not in err


def test_zstd_sp8192_container_is_refused_by_the_family():
    """The reference reads only brotli or xz; a zstd stream of the same dict cannot be its artifact."""
    raw = compress.byte_unshuffle(compress.decompress(ART.read_bytes(), 1 << 30)[0])[0]
    art = codec.read_artifact(compress.compress(raw, "zstd"))
    with pytest.raises(InputError, match="only brotli or lzma"):
        runner.prepare(art, CONFIG)
