"""The CaseOps family through the CLI and the registry: detection from content, `inspect --json`
printing a config `evaluate` accepts unchanged, configs that contradict the tensors rejected
naming the key, and the per-group lrzip container scoring exactly like the brotli one."""

from __future__ import annotations

import copy
import io
import json
import shutil

import pytest
import torch

from gepa import codec, families, runner
from gepa.containers import pergroup
from tests.support.inprocess_cli import assert_one_line_error as one_line_error, run
from tests.support.paths import REPO
from gepa.shards import count_tokens
from gepa import shards

ROOT = REPO
FX = ROOT / "tests" / "data" / "caseops_small"
REF = ROOT / "tests" / "data" / "reference_small"
ART = FX / "final_model.int6.ptz"
VAL = str(FX / "fineweb_val_*.bin")
STANDARD = json.loads((FX / "eval_standard.json").read_text())


def test_detection_is_by_content():
    assert families.detect(codec.read_artifact(ART)).name == "caseops"
    assert families.detect(codec.read_artifact(REF / "final_model.int6.ptz")).name == "gepa"
    assert not families.get("caseops").sniff(codec.read_artifact(REF / "final_model.int6.ptz"))


def test_evaluate_without_family_key_detects_and_says_so(capsys, tmp_path):
    cfg = {k: v for k, v in STANDARD.items() if k != "family"}
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(cfg))
    rc, out, err = run(capsys, "evaluate", ART, "--config", path, "--val", VAL, "--max-tokens", 4096)
    assert rc == 0, err
    assert "caseops (detected from the artifact)" in out and "caseops_bytes" in out


def test_inspect_json_prints_a_config_evaluate_accepts(capsys, tmp_path):
    rc, out, err = run(capsys, "inspect", ART, "--json")
    assert rc == 0, err
    info = json.loads(out)
    assert info["family"] == "caseops" and info["compression"] == "brotli+bshf"
    # The loop / lane layout is not stored; the inferred one fits this fixture's skips and depth.
    assert info["config"]["model"] == STANDARD["model"]
    path = tmp_path / "inferred.json"
    path.write_text(json.dumps(info["config"]))
    assert runner.prepare(ART, path).cfg.to_dict() == info["config"]
    rc, out, err = run(capsys, "evaluate", ART, "--config", path, "--val", VAL, "--max-tokens", 2048, "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["mode"] == "caseops_phased_ttt" and res["tokens_scored"] == 2048


@pytest.mark.parametrize("key,value", [
    ("caseops_attn_gate", "sparse"), ("caseops_attn_gate", "none"), ("caseops_smear_gate", "bos_fix"),
    ("caseops_skip_gates", False), ("caseops_num_loops", 3), ("num_kv_heads", 3), ("mlp_hidden", 512),
    ("num_layers", 4), ("vocab_size", 4096),
])
def test_config_contradicting_the_tensors_is_rejected_naming_the_key(capsys, tmp_path, key, value):
    cfg = copy.deepcopy(STANDARD)
    cfg["model"][key] = value
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(cfg))
    rc, _, err = run(capsys, "evaluate", ART, "--config", path, "--val", VAL)
    line = one_line_error(rc, err)
    assert f"model.{key}" in line or f"config's {key}" in line, line


@pytest.mark.parametrize("section,key,value,needle", [
    ("caseops_ttt", "chunk_size", 200, "caseops_ttt.chunk_size"),
    ("eval", "caseops_sidecar", "../../etc/passwd", "eval.caseops_sidecar"),
    ("eval", "caseops_world_size", 3, "eval.caseops_world_size"),
    ("eval", "mode", "sliding", "eval.mode"),
    ("model", "caseops_parallel_final_lane", "both", "model.caseops_parallel_final_lane"),
])
def test_bad_config_values_are_rejected(capsys, tmp_path, section, key, value, needle):
    cfg = copy.deepcopy(json.loads((FX / "eval_phased_adam.json").read_text()))
    cfg[section][key] = value
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(cfg))
    rc, _, err = run(capsys, "evaluate", ART, "--config", path, "--val", VAL)
    assert needle in one_line_error(rc, err)


def test_a_standard_eval_that_scores_nothing_is_an_input_error(capsys, tmp_path):
    cfg = copy.deepcopy(STANDARD)
    cfg["eval"]["caseops_val_batch_tokens"] = 1 << 22
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(cfg))
    rc, _, err = run(capsys, "evaluate", ART, "--config", path, "--val", VAL)
    assert "scored no target" in one_line_error(rc, err)


def test_default_val_is_the_caseops_sample_and_sidecars_are_skipped():
    prep = runner.prepare(ART, FX / "eval_standard.json")
    assert "caseops" in runner.default_val_glob(prep.family)
    # The fixture's glob also matches fineweb_val_bytes_000000.bin; only the token shard counts.
    assert runner.count_chunks(prep, VAL) == 25
    assert count_tokens(VAL) == 25944


def _save(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.skipif(shutil.which("lrzip") is None, reason="lrzip is not installed (make test installs it)")
def test_pergroup_and_plain_brotli_containers_score_like_the_fixture(tmp_path):
    art = codec.read_artifact(ART)
    obj = art.container
    pg = tmp_path / "pergroup.ptz"
    pg.write_bytes(pergroup.encode(obj, _save))
    plain = tmp_path / "brotli.ptz"
    codec.write_artifact(plain, obj, "brotli")
    cfg = copy.deepcopy(STANDARD)
    scores = {}
    for path, comp in ((ART, "brotli+bshf"), (pg, "pergroup"), (plain, "brotli")):
        a = codec.read_artifact(path)
        assert a.compression == comp and families.detect(a).name == "caseops"
        cfg["model"]["caseops_compressor"] = comp
        scores[comp] = runner.run_evaluation(a, cfg, val_glob=VAL, max_tokens=2048).val_bpb
    assert scores["pergroup"] == scores["brotli+bshf"] == scores["brotli"]


def test_a_sidecar_of_the_wrong_length_is_refused(capsys, tmp_path):
    bad = tmp_path / "fineweb_val_bytes_000000.bin"
    shards.write_shard(bad, [0, 1, 2])
    rc, _, err = run(capsys, "evaluate", ART, "--config", FX / "eval_standard.json", "--val", VAL, "--sidecar", bad)
    assert "one entry per token" in one_line_error(rc, err)
    rc, _, err = run(capsys, "evaluate", ART, "--config", FX / "eval_standard.json", "--val", VAL, "--sidecar",
                     tmp_path / "missing_*.bin")
    assert "no byte sidecar matches" in one_line_error(rc, err)
