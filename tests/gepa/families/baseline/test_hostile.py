"""Hostile baseline containers (int8 + zlib): each is built here from the fixture artifact and must
fail with a typed one-line error — through the safe reader, the family's checks and the CLI — and
the decompression cap must hold on this container's path too."""

from __future__ import annotations

import json

import pytest
import torch

from api.cli.main import main
from gepa import codec, families, runner
from gepa.errors import ArtifactContentError, ArtifactError, ArtifactFormatError, DecompressionLimitError
from gepa.families.baseline.family import FAMILY
from tests.support.artifacts import one_line, peak_during, zlib_bomb
from tests.support.paths import DATA

FIX = DATA / "baseline_small"
ART = FIX / "final_model.int8.ptz"
CONFIG = FIX / "eval_standard.json"


def fixture_obj() -> dict:
    obj = codec.read_artifact(ART).container
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in obj.items()}


def load(blob: bytes, config=None, **caps):
    """What `golfcheck evaluate` does before scoring: read, detect or take the family, check."""
    raw = json.loads(CONFIG.read_text()) if config is None else config
    return runner.prepare(blob, raw, **caps)


def expect(exc_type, blob: bytes, config=None, **caps) -> str:
    with pytest.raises(exc_type) as ei:
        load(blob, config, **caps)
    return one_line(ei.value)


def test_the_untouched_fixture_loads():
    prep = load(ART.read_bytes())
    assert prep.family.name == "baseline" and prep.state["tok_emb.weight"].dtype == torch.bfloat16
    assert prep.state["blocks.0.attn.c_q.weight"].dtype == torch.float32


# ---------------------------------------------------------------- stream level

def test_truncated_and_trailing_bytes():
    blob = ART.read_bytes()
    for cut in (len(blob) - 1, len(blob) - 4, len(blob) // 2, 64, 3):
        msg = expect(ArtifactFormatError, blob[:cut])
        assert "truncated" in msg or "corrupt" in msg
    assert "trailing" in expect(ArtifactFormatError, blob + b"\x00junk")


def test_bit_flips_never_escape_as_raw_exceptions():
    blob = ART.read_bytes()
    caught = 0
    for pos in range(2, len(blob), len(blob) // 23):
        flipped = bytearray(blob)
        flipped[pos] ^= 0x5A
        try:
            load(bytes(flipped))
        except ArtifactError as e:
            one_line(e)
            caught += 1
    assert caught > 0


def test_decompression_cap_applies_to_the_baseline_container():
    blob = ART.read_bytes()
    raw_size = codec.read_artifact(blob).decompressed_bytes
    assert "more than 1,000,000 bytes" in expect(DecompressionLimitError, blob, max_decompressed_bytes=1_000_000)
    assert raw_size > 1_000_000
    assert "over the 100,000-byte limit" in expect(DecompressionLimitError, blob, max_compressed_bytes=100_000)


def test_zlib_bomb_is_stopped_with_bounded_memory():
    bomb = zlib_bomb(256 << 20)
    assert bomb[:2] == b"\x78\xda" and len(bomb) < 1 << 20
    peak = peak_during(lambda: expect(DecompressionLimitError, bomb, max_decompressed_bytes=16 << 20))
    assert peak < (16 << 20) + (32 << 20)


# ---------------------------------------------------------------- content level

def _with(mutate) -> bytes:
    obj = fixture_obj()
    mutate(obj)
    return codec.serialize(obj, "zlib")


def _resize_fc(obj):
    name = "blocks.1.mlp.fc.weight"
    obj["quantized"][name] = obj["quantized"][name][:500].clone()
    obj["scales"][name] = obj["scales"][name][:500].clone()


def _drop_proj(obj):
    for section in ("quantized", "scales", "dtypes", "qmeta"):
        obj[section].pop("blocks.2.mlp.proj.weight")


def _nan_fp16(obj):
    t = obj["passthrough"]["blocks.0.attn.c_q.weight"].clone()
    t[3, 3] = float("nan")
    obj["passthrough"]["blocks.0.attn.c_q.weight"] = t


def _int16(obj):
    obj["quantized"]["blocks.0.mlp.fc.weight"] = obj["quantized"]["blocks.0.mlp.fc.weight"].to(torch.int16)


def _short_scale(obj):
    obj["scales"]["tok_emb.weight"] = obj["scales"]["tok_emb.weight"][:10].clone()


def _zero_scale(obj):
    s = obj["scales"]["blocks.0.mlp.proj.weight"].clone()
    s[0] = 0
    obj["scales"]["blocks.0.mlp.proj.weight"] = s


def _huge_view(obj):
    obj["passthrough"]["blocks.0.attn_scale"] = torch.zeros(1).expand(100_000, 100_000)


@pytest.mark.parametrize("mutate,needle", [
    (_resize_fc, "tensor blocks.1.mlp.fc.weight has shape (500, 192) but the config's model.mlp_hidden=576, "
                 "model.model_dim=192 needs (576, 192)"),
    (_drop_proj, "missing 1 tensor(s): blocks.2.mlp.proj.weight"),
    (_nan_fp16, "NaN"),
    (_int16, "expected int8"),
    (_short_scale, "per-row scale of tok_emb.weight must be float16 with shape (1024,)"),
    (_zero_scale, "zero or negative"),
    (_huge_view, "strided view (100000, 100000)"),
    (lambda o: o["dtypes"].__setitem__("tok_emb.weight", "int64"), "'int64'"),
    (lambda o: o["passthrough_orig_dtypes"].__setitem__("tok_emb.weight", "float32"), "not a passthrough tensor"),
    (lambda o: o.__setitem__("payload", {"x": torch.zeros(1)}), "unknown top-level key 'payload'"),
])
def test_bad_content_is_a_one_line_content_error(mutate, needle):
    blob = _with(mutate)
    for config in (None, {}):  # the fixture config, and a config inferred from the tensors
        assert needle in expect(ArtifactContentError, blob, config)


def test_the_full_int8_range_is_accepted():
    def set_min(obj):
        q = obj["quantized"]["blocks.0.mlp.fc.weight"].clone()
        q[0, 0] = -128
        obj["quantized"]["blocks.0.mlp.fc.weight"] = q

    prep = load(_with(set_min))
    s = fixture_obj()["scales"]["blocks.0.mlp.fc.weight"][0].float()
    assert prep.state["blocks.0.mlp.fc.weight"][0, 0] == -128 * s


def test_a_foreign_tensor_is_not_claimed_and_named():
    blob = _with(lambda o: o["passthrough"].__setitem__("smear_gate.gate", torch.zeros(192)))
    art = codec.read_artifact(blob)
    assert not FAMILY.sniff(art)
    with pytest.raises(ArtifactFormatError, match="no model family recognises"):
        families.detect(art)
    assert "smear_gate.gate" in expect(ArtifactFormatError, blob)


def test_hostile_baseline_artifacts_exit_2_through_the_cli(capsys, tmp_path):
    cases = {"truncated": ART.read_bytes()[:5000], "wrong-shape": _with(_resize_fc),
             "foreign": _with(lambda o: o["passthrough"].__setitem__("bigram.embed.weight", torch.zeros(8, 8)))}
    for name, blob in cases.items():
        path = tmp_path / f"{name}.int8.ptz"
        path.write_bytes(blob)
        rc = main(["evaluate", str(path), "--config", str(CONFIG), "--val", str(FIX / "fineweb_val_*.bin")])
        out, err = capsys.readouterr()
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 2 and out == "" and len(lines) == 1 and lines[0].startswith("golfcheck: error: "), (name, err)
        assert "Traceback" not in err
