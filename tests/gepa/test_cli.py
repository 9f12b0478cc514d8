"""The evaluator's command line: JSON output, exit codes, and hostile inputs that must end with
exit code 2 and one line on stderr — never a traceback, never code execution."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import zstandard

from gepa import codec
from tests.support.artifacts import torch_zip_with_pickle, zstd_bomb
from tests.support.inprocess_cli import assert_one_line_error, run
from tests.support.paths import REPO

ROOT = REPO


@pytest.fixture(scope="module")
def ref_args(ref_dir_module):
    return ["--val", ref_dir_module / "fineweb_val_000000.bin",
            "--tokenizer", ROOT / "gepa" / "assets" / "fineweb_1024_bpe.model"]


@pytest.fixture(scope="module")
def ref_dir_module():
    return ROOT / "tests" / "data" / "reference_small"


def test_evaluate_json_matches_reference(capsys, ref_dir_module, ref_args):
    ref = ref_dir_module
    rc, out, err = run(capsys, "evaluate", ref / "final_model.int6.ptz", "--config", ref / "eval_ttt.json",
                       "--mode", "sliding", "--json", *ref_args)
    assert rc == 0, err
    result = json.loads(out)
    expected = json.loads((ref / "expected.json").read_text())["sliding"]
    assert result["mode"] == "sliding"
    assert result["val_bpb"] == pytest.approx(expected["val_bpb"], abs=1e-6)
    assert set(result) >= {"val_loss", "val_bpb", "tokens_scored", "bytes_scored", "mode", "elapsed_s"}


def test_make_artifact_then_evaluate_ttt_and_inspect(capsys, tmp_path):
    art = tmp_path / "tiny.ptz"
    rc, out, err = run(capsys, "make-artifact", art, "--config", ROOT / "examples" / "tiny_eval.json", "--steps", "2")
    assert rc == 0, err
    assert art.stat().st_size > 1000
    rc, out, err = run(capsys, "evaluate", art, "--config", ROOT / "examples" / "tiny_eval.json",
                       "--max-tokens", "4096", "--json")
    assert rc == 0, err
    result = json.loads(out)
    assert result["demo"] is True and result["max_tokens"] == 4096  # a cut run is labelled a demo figure
    assert result["mode"] == "ttt" and result["tokens_scored"] >= 4096
    assert [c["index"] for c in result["chunks"]] == [0, 1]
    assert result["chunks"][0]["train_seconds"] > 0 and result["chunks"][1]["train_seconds"] == 0
    rc, out, err = run(capsys, "inspect", art, "--json")
    info = json.loads(out)
    assert info["family"] == "gepa"
    assert info["format"] == "mixed_clean_per_row_v1" and info["compression"] == "zstd"
    tiny = json.loads((ROOT / "examples" / "tiny_eval.json").read_text())["model"]
    assert info["config"]["model"]["num_layers"] == tiny["num_layers"] == 2
    assert info["config"]["model"]["num_kv_heads"] == tiny["num_kv_heads"]


def _hostile(tmp_path: Path, ref_dir: Path) -> dict[str, Path]:
    good = (ref_dir / "final_model.int6.ptz").read_bytes()
    cases: dict[str, bytes] = {
        "truncated": good[: len(good) // 2],
        "wrong-magic": b"PK\x03\x04 definitely not an artifact" * 10,
        "bomb": zstd_bomb(1 << 30),
    }
    marker = tmp_path / "pwned"
    cmd = f"touch {marker}"
    pkl = (b"\x80\x02cos\nsystem\nq\x00X" + len(cmd).to_bytes(4, "little") + cmd.encode() + b"\x85q\x01Rq\x02.")
    cases["os-system"] = zstandard.ZstdCompressor().compress(torch_zip_with_pickle(pkl))
    pkl = (b"\x80\x02cbuiltins\nexec\nq\x00X" + len(cmd).to_bytes(4, "little") + cmd.encode() + b"\x85q\x01Rq\x02.")
    cases["builtins-exec"] = zstandard.ZstdCompressor().compress(torch_zip_with_pickle(pkl))
    obj = codec.read_artifact(good).container
    nan = dict(obj, passthrough=dict(obj["passthrough"]))
    name = next(k for k, v in nan["passthrough"].items() if v.dtype == torch.float32 and v.numel() > 1)
    bad = nan["passthrough"][name].clone()
    bad[0] = float("nan")
    nan["passthrough"][name] = bad
    cases["nan-weights"] = codec.serialize(nan)
    cases["unknown-tag"] = codec.serialize(dict(obj, __quant_format__="int4_magic_v9"))
    paths = {}
    for key, blob in cases.items():
        p = tmp_path / f"{key}.ptz"
        p.write_bytes(blob)
        paths[key] = p
    return paths


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, ref_dir_module):
    return _hostile(tmp_path_factory.mktemp("hostile"), ref_dir_module)


@pytest.mark.parametrize("case,needle", [
    ("truncated", "truncated"), ("wrong-magic", "zstd"), ("bomb", "decompress"),
    ("os-system", "os.system"), ("builtins-exec", "builtins.exec"), ("nan-weights", "nan"),
    ("unknown-tag", "int4_magic_v9"),
])
def test_hostile_artifacts_exit_2_with_one_line(case, needle, hostile, capsys, ref_dir_module, ref_args):
    rc, out, err = run(capsys, "evaluate", hostile[case], "--config", ref_dir_module / "eval_standard.json", *ref_args)
    assert_one_line_error(rc, err)
    assert needle.lower() in err.lower()
    assert out == ""
    assert not (hostile[case].parent / "pwned").exists()


def test_wrong_shapes_for_the_config(capsys, ref_dir_module, ref_args, tmp_path):
    cfg = json.loads((ref_dir_module / "eval_standard.json").read_text())
    cfg["model"]["num_kv_heads"] = 4
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(cfg))
    rc, out, err = run(capsys, "evaluate", ref_dir_module / "final_model.int6.ptz", "--config", path, *ref_args)
    assert_one_line_error(rc, err)
    assert "model.num_kv_heads" in err and "set model.num_kv_heads to 2" in err and "blocks.0.attn.c_k.weight" in err


@pytest.mark.parametrize("key,value,needle", [
    ("num_heads", 8, "set model.num_heads to 4"),
    ("num_layers", 11, "set model.num_layers to 3"),
    ("ve_layers", [1, 2], "ve_layers lists 2 layer(s) but the artifact has 1"),
    ("ve_layers", [7], "names layer(s) [7]"),
])
def test_config_that_contradicts_the_tensors_names_the_key(key, value, needle, capsys, ref_dir_module, ref_args,
                                                            tmp_path):
    cfg = json.loads((ref_dir_module / "eval_standard.json").read_text())
    cfg["model"][key] = value
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(cfg))
    rc, out, err = run(capsys, "evaluate", ref_dir_module / "final_model.int6.ptz", "--config", path, *ref_args)
    assert_one_line_error(rc, err)
    assert needle in err


def test_inspect_config_is_accepted_by_evaluate_as_is(capsys, ref_dir_module, ref_args, tmp_path):
    art = ref_dir_module / "final_model.int6.ptz"
    rc, out, err = run(capsys, "inspect", art, "--print-config")
    assert rc == 0, err
    path = tmp_path / "eval.json"
    path.write_text(out)
    cfg = json.loads(out)
    assert cfg["family"] == "gepa" and cfg["model"]["num_layers"] == 3 and cfg["model"]["ve_layers"] == [2]
    rc, out, err = run(capsys, "evaluate", art, "--config", path, "--mode", "standard", "--max-tokens", "4096",
                       "--json", *ref_args)
    assert rc == 0, err
    assert json.loads(out)["family"] == "gepa"


def test_no_config_infers_the_model_and_says_so(capsys, ref_dir_module, ref_args):
    rc, out, err = run(capsys, "evaluate", ref_dir_module / "final_model.int6.ptz", "--mode", "standard",
                       "--max-tokens", "4096", *ref_args)
    assert rc == 0, err
    assert "family         gepa (detected from the artifact)" in out
    assert "model inferred from the tensors" in out
    assert "demo figure" in out and "DEMO" in out


def test_a_config_file_given_as_validation_shards_is_bad_input(capsys, ref_dir_module, tmp_path):
    cfg = tmp_path / "eval.json"
    cfg.write_text("{}")
    rc, out, err = run(capsys, "evaluate", ref_dir_module / "final_model.int6.ptz", "--val", cfg)
    assert_one_line_error(rc, err)
    assert "shorter than the 1024-byte header" in err


@pytest.mark.parametrize("config_text,needle", [
    ('{"eval": {"stride": 4096, "seq_len": 2048}}', "stride"),
    ('{"ttt": {"chunk_tokens": 1000}}', "chunk_tokens"),
    ('{"ttt": {"freeze_blocks": 12}}', "freeze_blocks"),
    ('{"model": {"num_layers": "11"}}', "integer"),
    ('{"eval": {"mode": "ttt", "bogus": 1}}', "bogus"),
    ('{"ttt": {"lr": NaN}}', "NaN"),
    ('{"model": ', "not valid JSON"),
    ('[' * 100000, "nested"),
])
def test_bad_configs_exit_2(config_text, needle, capsys, tmp_path, ref_dir_module):
    path = tmp_path / "eval.json"
    path.write_text(config_text)
    rc, out, err = run(capsys, "evaluate", ref_dir_module / "final_model.int6.ptz", "--config", path)
    assert_one_line_error(rc, err)
    assert needle in err


def test_missing_files_exit_2(capsys, tmp_path):
    rc, _, err = run(capsys, "evaluate", tmp_path / "nope.ptz")
    assert_one_line_error(rc, err)
    rc, _, err = run(capsys, "inspect", tmp_path / "nope.ptz")
    assert_one_line_error(rc, err)


def test_console_script_prints_no_traceback(hostile, ref_dir_module):
    """The installed entry point, as a user runs it, for an artifact whose pickle calls os.system."""
    exe = Path(sys.executable).parent / "golfcheck"
    proc = subprocess.run([str(exe), "inspect", str(hostile["os-system"])], capture_output=True, text=True,
                          env={**os.environ, "GOLFCHECK_DEBUG": ""}, timeout=300)
    assert proc.returncode == 2
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1
