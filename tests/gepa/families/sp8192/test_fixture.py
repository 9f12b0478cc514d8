"""The sp8192 family against its published fixture, through the CLI: every `eval_*.json` is the
contract (accepted unchanged, reproducing the number the reference's own functions returned),
detection from content, `inspect --json` round trips, and configs that contradict the tensors."""

from __future__ import annotations

import json

import pytest

from gepa import codec, families
from tests.support.inprocess_cli import assert_one_line_error, run
from tests.support.paths import REPO
import numpy as np
from gepa.runner import default_val_glob
from gepa.shards import read_shard, shard_paths

ROOT = REPO
FIX = ROOT / "tests" / "data" / "sp8192_small"
ART = FIX / "final_model.int6.ptz"
TOKENIZER = ROOT / "gepa" / "assets" / "fineweb_8192_bpe.model"
DATA_ARGS = ["--val", FIX / "fineweb_val_000000.bin", "--tokenizer", TOKENIZER]
EXPECTED = json.loads((FIX / "expected.json").read_text())["results"]
# The tolerances: 1e-5 BPB for standard and sliding, 2e-4 for any TTT (fp32 on CPU).
TOLERANCE = {"standard": 1e-5, "sliding": 1e-5, "ttt": 2e-4}


@pytest.mark.parametrize("config", sorted(FIX.glob("eval_*.json")), ids=lambda p: p.stem)
def test_every_fixture_config_reproduces_the_reference(capsys, config):
    case = config.stem.removeprefix("eval_")
    rc, out, err = run(capsys, "evaluate", ART, "--config", config, "--json", *DATA_ARGS)
    assert rc == 0, err
    result = json.loads(out)
    want = EXPECTED[case]
    mode = json.loads(config.read_text())["eval"]["mode"]
    assert result["family"] == "sp8192" and result["mode"] == mode
    assert result["val_bpb"] == pytest.approx(want["val_bpb"], abs=TOLERANCE[mode])
    assert result["val_loss"] == pytest.approx(want["val_loss"], abs=TOLERANCE[mode] * 3)
    # Sliding and TTT partition the targets: each is scored exactly once (spec §6.2).
    assert result["tokens_scored"] == result["total_targets"] == 22912


def test_detected_from_content_and_gepa_is_not_claimed(tmp_path):
    art = codec.read_artifact(ART)
    assert art.compression == "brotli+bshf"
    assert families.detect(art).name == "sp8192"
    # The same bytes under the GEPA file name are still sp8192; the GEPA artifact is never claimed.
    renamed = tmp_path / "final_model.int6.ptz.zst"
    renamed.write_bytes(ART.read_bytes())
    assert families.detect(codec.read_artifact(renamed)).name == "sp8192"
    gepa_art = codec.read_artifact(ROOT / "tests" / "data" / "reference_small" / "final_model.int6.ptz")
    assert not families.get("sp8192").sniff(gepa_art)
    assert families.detect(gepa_art).name == "gepa"


def test_extra_tensor_names_or_tags_are_not_claimed():
    """A GPTQ container with keys of another lineage (CaseOps gates, SP4096 value embeddings) or
    other storage tags is not an sp8192 artifact."""
    fam = families.get("sp8192")
    art = codec.read_artifact(ART)
    for damage in (lambda o: o["m"].__setitem__("blocks.0.attn.attn_gate_w", "gate_int8_row"),
                   lambda o: o["m"].__setitem__("ve_shared.embed.weight", "passthrough (float16)"),
                   lambda o: o["m"].__setitem__("lane_merge", "passthrough (float16)"),
                   lambda o: o["m"].__setitem__("blocks.0.mlp.fc.weight", "gptq (int7)"),
                   lambda o: o["m"].pop("skip_weights")):
        obj = {"w": dict(art.container["w"]), "m": dict(art.container["m"])}
        damage(obj)
        other = codec.Artifact(kind="gptq", compression=art.compression, compressed_bytes=0,
                               decompressed_bytes=0, container=obj)
        assert not fam.sniff(other)


def test_detection_is_announced_without_a_family_key(capsys, tmp_path):
    raw = json.loads((FIX / "eval_standard.json").read_text())
    raw.pop("family")
    cfg = tmp_path / "eval.json"
    cfg.write_text(json.dumps(raw))
    rc, out, err = run(capsys, "evaluate", ART, "--config", cfg, "--max-tokens", "1024", *DATA_ARGS)
    assert rc == 0, err
    assert "family         sp8192 (detected from the artifact)" in out


def test_inspect_json_prints_a_config_evaluate_accepts_unchanged(capsys, tmp_path):
    rc, out, err = run(capsys, "inspect", ART, "--json")
    assert rc == 0, err
    info = json.loads(out)
    assert info["family"] == "sp8192" and info["compression"] == "brotli+bshf"
    cfg = info["config"]
    model = cfg["model"]
    # What the tensors determine (the fixture's README: 5 layers, d=144, 4/2 heads, MLP 4x, 4 gated skips).
    assert (model["vocab_size"], model["num_layers"], model["model_dim"], model["num_heads"],
            model["num_kv_heads"], model["sp8192_mlp_mult"]) == (8192, 5, 144, 4, 2, 4.0)
    assert model["sp8192_skip_gates"] is True and model["sp8192_compressor"] == "brotli"
    schemes = {r["name"]: r["scheme"] for r in info["tensors"]}
    assert schemes["tok_emb.weight"] == "gptq_int8" and schemes["blocks.0.mlp.fc.weight"] == "gptq_int6"
    assert schemes["blocks.0.attn.c_q.weight"] == "fp16_passthrough"
    path = tmp_path / "inspected.json"
    path.write_text(json.dumps(cfg))
    rc, out, err = run(capsys, "evaluate", ART, "--config", path, "--max-tokens", "4096", "--json", *DATA_ARGS)
    assert rc == 0, err
    result = json.loads(out)
    assert result["family"] == "sp8192" and result["mode"] == cfg["eval"]["mode"]
    assert result["val_bpb"] > 0


@pytest.mark.parametrize("key, value", [
    ("model_dim", 160),
    ("vocab_size", 1024),
    ("num_layers", 6),
    ("num_heads", 6),
    ("num_kv_heads", 4),
    ("sp8192_mlp_mult", 3.0),
    ("sp8192_skip_gates", False),
    ("sp8192_num_loops", 2),
    ("sp8192_compressor", "lzma"),
])
def test_config_contradicting_the_tensors_is_rejected_naming_the_key(capsys, tmp_path, key, value):
    raw = json.loads((FIX / "eval_standard.json").read_text())
    raw["model"][key] = value
    cfg = tmp_path / "eval.json"
    cfg.write_text(json.dumps(raw))
    rc, out, err = run(capsys, "evaluate", ART, "--config", cfg, *DATA_ARGS)
    line = assert_one_line_error(rc, err)
    assert f"model.{key}" in line, line


def test_keys_of_other_families_and_bad_values_are_rejected(capsys, tmp_path):
    raw = json.loads((FIX / "eval_standard.json").read_text())
    for section, key, value, needle in [
        ("model", "xsa_layers", 3, "xsa_layers"),
        ("model", "sp8192_rope_table", "compiled", "model.sp8192_rope_table"),
        ("eval", "tail", "reference", "eval.tail"),
        ("ttt", "sp8192_ttt_trainable", "lora", "ttt.sp8192_ttt_trainable"),
        ("ttt", "chunk_tokens", 100, "ttt.chunk_tokens"),
    ]:
        bad = json.loads(json.dumps(raw))
        bad["eval"]["mode"] = "ttt"
        bad.setdefault(section, {})[key] = value
        cfg = tmp_path / "eval.json"
        cfg.write_text(json.dumps(bad))
        rc, out, err = run(capsys, "evaluate", ART, "--config", cfg, *DATA_ARGS)
        assert needle in assert_one_line_error(rc, err)


def test_bundled_sample_is_tokenized_like_the_fixture():
    """The family's default validation sample uses the fixture's convention (BOS before each
    document, no EOS): its documents 150-167 are exactly the fixture's shard."""
    sample = np.concatenate([read_shard(p) for p in shard_paths(default_val_glob(families.get("sp8192")))])
    bos = np.flatnonzero(sample == 1)
    assert len(bos) == 200
    fixture = read_shard(FIX / "fineweb_val_000000.bin")
    assert np.array_equal(sample[bos[150]:bos[168]], fixture)


def test_no_family_claims_another_familys_fixture():
    for folder in sorted((ROOT / "tests" / "data").glob("*_small")):
        for path in sorted(folder.glob("final_model.*.ptz")):
            art = codec.read_artifact(path)
            claimed = families.get("sp8192").sniff(art)
            assert claimed == (folder.name == "sp8192_small"), path
