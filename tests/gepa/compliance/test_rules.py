"""One passing and one failing input per rule (synthetic folders)."""
import json

import pytest

from gepa.compliance import RULESET_VERSION, check_record
from gepa.compliance.engine import Rule, result

from tests.support.compliance import SAMPLES, good_logs, good_submission, seed_log
from tests.support.paths import DATA
from gepa.errors import InputError

LEGAL = (SAMPLES / "legal_score_first.py").read_text()


def status(v, rid):
    return v.get(rid).status


def test_clean_record_passes_everything_static(make_record):
    v = check_record(make_record(good_submission(), good_logs(), code=LEGAL))
    bad = {r.rule: r.summary for r in v.results if r.status in ("fail", "warn")}
    assert bad == {"logs.code-size": bad.get("logs.code-size")} or bad == {}
    assert v.status in ("pass", "warn") and v.ruleset == RULESET_VERSION
    for rid in ("files.required", "submission.schema", "size.cap", "logs.final-metric", "logs.mean",
                "seeds.unique", "seeds.config-identical", "time.eval", "code.ttt-pre-eval", "code.network"):
        assert status(v, rid) == "pass", rid


def test_required_files(make_record):
    v = check_record(make_record(good_submission(), good_logs(), code=None, readme=False))
    r = v.get("files.required")
    assert r.status == "fail" and "README.md" in r.summary and "train_gpt.py" in r.summary
    v2 = check_record(make_record(good_submission(track="non_record_16mb"), good_logs(), code=None, track="track_non_record_16mb", name="n"))
    assert v2.get("files.required").status == "warn"  # gaps are warnings for non-records


def test_schema(make_record):
    assert status(check_record(make_record("{not json", good_logs(), code=LEGAL)), "submission.schema") == "fail"
    sub = good_submission()
    del sub["author"]
    assert status(check_record(make_record(sub, good_logs(), code=LEGAL)), "submission.schema") == "warn"


def test_size_cap_max_over_seed_logs(make_record):
    logs = good_logs()
    logs["train_seed999.log"] = seed_log("999", 1.082, total=16_000_001)
    v = check_record(make_record(good_submission(), logs, code=LEGAL))
    r = v.get("size.cap")
    assert r.status == "fail" and "16,000,001" in r.summary
    assert any(e.file == "train_seed999.log" and e.value == 16_000_001 and e.limit == 16_000_000 for e in r.evidence)


def test_size_cap_with_artifact(make_record, tmp_path):
    art = tmp_path / "model.ptz"
    art.write_bytes(b"\0" * 1000)
    folder = make_record(good_submission(), good_logs(), code=LEGAL)
    r = check_record(folder, art).get("size.cap")
    assert r.status == "pass"
    assert any(e.value == len(LEGAL.encode()) + 1000 for e in r.evidence)


def test_artifact_integrity(make_record, tmp_path):
    folder = make_record(good_submission(), good_logs(), code=LEGAL)
    assert status(check_record(folder), "artifact.integrity") == "skip"
    junk = tmp_path / "junk.ptz"
    junk.write_bytes(b"not an artifact at all")
    r = check_record(folder, junk).get("artifact.integrity")
    assert r.status == "fail"
    ref = DATA / "reference_small" / "final_model.int6.ptz"
    assert status(check_record(folder, ref), "artifact.integrity") == "pass"


def test_config_legal(make_record):
    folder = make_record(good_submission(), good_logs(), code=LEGAL)
    assert status(check_record(folder), "config.legal") == "skip"
    (folder / "eval_config.json").write_text(json.dumps({"eval": {"mode": "ttt"}}))
    assert status(check_record(folder), "config.legal") == "pass"
    (folder / "eval_config.json").write_text(json.dumps({"eval": {"mode": "oracle"}}))
    assert status(check_record(folder), "config.legal") == "fail"


def test_final_metric_mismatch(make_record):
    sub = good_submission()
    sub["seed_results"]["314"]["val_bpb"] = 1.070
    r = check_record(make_record(sub, good_logs(), code=LEGAL)).get("logs.final-metric")
    assert r.status == "fail"
    assert any(e.file == "train_seed314.log" and e.value == 1.070 for e in r.evidence)


def test_mean_must_be_the_mean_not_the_best_seed(make_record):
    sub = good_submission(val_bpb=1.08)
    r = check_record(make_record(sub, good_logs(), code=LEGAL)).get("logs.mean")
    assert r.status == "fail" and "best seed" in r.summary


def test_artifact_size_vs_logs(make_record):
    sub = good_submission()
    sub["seed_results"]["42"]["artifact_bytes"] = 15_800_000
    r = check_record(make_record(sub, good_logs(), code=LEGAL)).get("logs.artifact-size")
    assert r.status == "warn"  # warning-level: understated sizes are reported, size.cap decides
    assert any(e.value == 15_800_000 and e.limit == 15_900_000 for e in r.evidence)


def test_seeds_unique(make_record):
    sub = good_submission()
    sub["seeds"] = [42, 42, 999]
    assert status(check_record(make_record(sub, good_logs(), code=LEGAL)), "seeds.unique") == "fail"


def test_config_identical(make_record):
    logs = good_logs()
    logs["train_seed999.log"] = logs["train_seed999.log"].replace("matrix_lr: 0.02", "matrix_lr: 0.03")
    r = check_record(make_record(good_submission(), logs, code=LEGAL)).get("seeds.config-identical")
    assert r.status == "fail" and "matrix_lr" in r.summary


CANON = "c" * 64


def full(bpb, **over):
    """A measured result on the whole canonical validation set (the fingerprint given as CANON)."""
    return {"val_bpb": bpb, "val_sha256": CANON, "tokens_scored": 1000, "total_targets": 1000, "max_tokens": None, **over}


def repro(folder, bpb, **over):
    return check_record(folder, measured=full(bpb, **over), canonical_val_sha256=CANON)


def test_repro_tolerance_from_seed_spread_with_floor(make_record):
    folder = make_record(good_submission(), good_logs(), code=LEGAL)
    ok = repro(folder, 1.0815)
    assert ok.get("repro.bpb").status == "pass" and ok.verdict == "pass"
    bad = repro(folder, 1.0900)
    assert bad.get("repro.bpb").status == "fail" and bad.get("repro.bpb").kind == "not-reproduced"
    assert bad.verdict == "fail"
    tight = make_record(good_submission(seeds=(("1", 1.08), ("2", 1.08), ("3", 1.08))), good_logs(seeds=(("1", 1.08), ("2", 1.08), ("3", 1.08))), code=LEGAL, name="t")
    assert repro(tight, 1.0814).get("repro.bpb").status == "pass"  # floor 0.0015
    assert repro(tight, 1.0820).get("repro.bpb").status == "fail"


@pytest.mark.parametrize("over,canon,label", [
    ({"max_tokens": 16384}, CANON, "demo"),                       # GOLFCHECK_MAX_VAL_TOKENS / --max-tokens
    ({"val_sha256": "d" * 64}, CANON, "non-canonical"),           # another validation set
    ({}, None, "non-canonical"),                                  # no canonical set configured
    ({"unscored_targets": 64}, CANON, "partial"),                 # a window rule left targets unscored
])
def test_unverified_data_is_never_pass(make_record, over, canon, label):
    """A result on anything but the full canonical validation set is never `pass`, even when its
    number equals the claim: reproduction is not compared, the verdict is `unverified`."""
    folder = make_record(good_submission(), good_logs(), code=LEGAL)
    v = check_record(folder, measured=full(1.081, **over), canonical_val_sha256=canon)
    assert v.get("data.canonical").status == "warn" and v.get("data.canonical").summary.startswith(label)
    assert v.get("repro.bpb").status == "skip"
    assert v.verdict == "unverified" and v.facts["coverage"] == label


def test_no_claim_is_unverified(make_record):
    folder = make_record(None, {}, code=LEGAL, track="track_non_record_16mb", name="noclaim")
    v = check_record(folder, measured=full(1.081), canonical_val_sha256=CANON)
    assert v.get("data.canonical").status == "pass" and v.get("repro.bpb").status == "skip"
    assert v.verdict == "unverified"


def test_stages_split_the_rules(make_record):
    folder = make_record(good_submission(), good_logs(), code=LEGAL)
    checks = check_record(folder, stages=["checks"])
    score = check_record(folder, measured=full(1.081), canonical_val_sha256=CANON, stages=["score"])
    assert [r.rule for r in score.results] == ["data.canonical", "repro.bpb"]
    assert not {r.rule for r in checks.results} & {"data.canonical", "repro.bpb"}


def test_eval_time_projection(make_record):
    folder = make_record(good_submission(), good_logs(eval_ms=700_000), code=LEGAL)
    assert status(check_record(folder), "time.eval") == "fail"
    ok = make_record(good_submission(), good_logs(), code=LEGAL, name="ok")
    assert status(check_record(ok), "time.eval") == "pass"
    # measured on one H100: 8x slower than the reference, so 2400 s projects to 300 s
    assert status(check_record(ok, measured={"eval_seconds": 2400, "hardware": "1xH100"}), "time.eval") == "pass"
    assert status(check_record(ok, measured={"eval_seconds": 900, "hardware": "8xH100"}), "time.eval") == "fail"


def test_train_time_over_budget_fails(make_record):
    logs = {k: v.replace("train_time:599500ms", "train_time:640000ms") for k, v in good_logs().items()}
    r = check_record(make_record(good_submission(), logs, code=LEGAL)).get("time.train")
    assert r.status == "fail" and r.evidence[0].value == 640.0 and r.evidence[0].line


def test_train_time_counts_post_training_calibration(make_record):
    """GPTQ Hessian collection after the loop reads training data: it counts (599.5 + 3.5 s > 600 s).
    Self-generated (AR) calibration reads no data: reported, not counted."""
    hess = "gptq:reserving 0s, effective=600000ms\nGPTQ:collected 67 Hessians in 3.5s\n"
    logs = {k: v + hess for k, v in good_logs().items()}
    r = check_record(make_record(good_submission(), logs, code=LEGAL)).get("time.train")
    assert r.status == "fail" and r.evidence[0].value == 603.0 and "calibration 3.5 s" in r.evidence[0].message
    ar = ("gptq:generating autoregressive calibration data (64 seqs x 2048 tokens, temp=0.8)...\n"
          "gptq:generated 64 sequences in 196.7s\ngptq:collected hessians for 68 layers (AR self-gen)\n")
    logs = {k: v + ar for k, v in good_logs().items()}
    r = check_record(make_record(good_submission(), logs, code=LEGAL, name="ar")).get("time.train")
    assert r.status == "pass" and any("not counted" in e.message for e in r.evidence)


def test_val_token_count_subset_and_train_shards(make_record):
    assert status(check_record(make_record(good_submission(), good_logs(), code=LEGAL)), "data.val-tokens") == "pass"
    subset = {k: v.replace("tokens:40540160", "tokens:8126464") for k, v in good_logs().items()}
    r = check_record(make_record(good_submission(), subset, code=LEGAL, name="sub")).get("data.val-tokens")
    assert r.status == "fail" and r.kind == "val-subset" and r.evidence[0].limit == 40_540_160
    leak = {k: v.replace("train_shards:80", "train_shards:1499") for k, v in good_logs().items()}
    r = check_record(make_record(good_submission(), leak, code=LEGAL, name="leak")).get("data.train-shards")
    assert r.status == "fail" and r.kind == "val-in-training" and r.evidence[0].line
    on_val = {k: "train_files: ./data/datasets/fineweb10B_sp8192/fineweb_val_*.bin\n" + v for k, v in good_logs().items()}
    r = check_record(make_record(good_submission(), on_val, code=LEGAL, name="onval")).get("data.train-shards")
    assert r.status == "fail" and "validation" in r.summary
    none = {k: v.replace("train_loader:dataset:fineweb10B_sp8192 train_shards:80\n", "") for k, v in good_logs().items()}
    assert status(check_record(make_record(good_submission(), none, code=LEGAL, name="none")), "data.train-shards") == "warn"


def test_training_on_a_dataset_folder_named_for_validation_fails(make_record):
    # PR #44 (ruled illegal): the baseline script, unchanged, run with DATA_PATH on a folder whose
    # one training shard is a symlink to the validation shard. Only the log shows it.
    valonly = {k: v.replace("train_loader:dataset:fineweb10B_sp8192 train_shards:80",
                            "train_loader:dataset:fineweb10B_sp8192_valonly train_shards:1")
               for k, v in good_logs().items()}
    r = check_record(make_record(good_submission(), valonly, code=LEGAL, name="valonly")).get("data.train-shards")
    assert r.status == "fail" and r.kind == "val-in-training" and "named for validation" in r.summary
    assert r.evidence[0].value == "fineweb10B_sp8192_valonly" and r.evidence[0].line
    # A dataset whose name merely contains the letters is not one: `..._interval`, `..._valley`.
    other = {k: v.replace("fineweb10B_sp8192 train_shards", "fineweb10B_sp8192_interval train_shards")
             for k, v in good_logs().items()}
    assert status(check_record(make_record(good_submission(), other, code=LEGAL, name="other")), "data.train-shards") == "pass"


def test_significance(make_record):
    folder = make_record(good_submission(), good_logs(), code=LEGAL)
    assert status(check_record(folder), "significance.record") == "skip"
    best = {"seed_bpbs": [1.0910, 1.0912, 1.0908]}
    r = check_record(folder, current_best=best).get("significance.record")
    assert r.status == "pass"
    close = check_record(folder, current_best={"seed_bpbs": [1.0820, 1.0830, 1.0825]}).get("significance.record")
    assert close.status == "fail" and "margin" in close.summary


def test_static_code_rule_fails_with_line(make_record):
    code = (SAMPLES / "illegal_pre_eval.py").read_text()
    r = check_record(make_record(good_submission(), good_logs(), code=code)).get("code.ttt-pre-eval")
    assert r.status == "fail" and r.evidence[0].line == 41 and r.evidence[0].file == "train_gpt.py"


def test_logged_settings_make_a_guarded_path_reachable(make_record):
    code = (SAMPLES / "legal_flags_off.py").read_text()
    folder = make_record(good_submission(), good_logs(), code=code)
    assert status(check_record(folder), "code.target-in-key") == "pass"
    logs = {k: v.replace("  matrix_lr: 0.02", "  matrix_lr: 0.02\n  ngram_eval_order: 5") for k, v in good_logs().items()}
    folder2 = make_record(good_submission(), logs, code=code, name="on")
    assert status(check_record(folder2), "code.target-in-key") == "fail"


def test_a_crashing_rule_becomes_a_warning():
    def boom(ctx):
        raise ValueError("bad")
    r = Rule("x.boom", "d", "error", boom).run(None)
    assert r.status == "warn" and "ValueError" in r.summary
    assert Rule("x.w", "d", "warning", lambda c: result("fail", "s")).run(None).status == "warn"


def test_bad_path_is_input_error(tmp_path):
    with pytest.raises(InputError):
        check_record(tmp_path / "missing")
    with pytest.raises(InputError):
        check_record(tmp_path, tmp_path / "nope.ptz")


def test_historical_copy_without_code_is_a_warning_not_a_failure(make_record):
    folder = make_record(good_submission(), good_logs(), code=None, readme=False)
    assert status(check_record(folder), "files.required") == "fail"
    r = check_record(folder, historical=True).get("files.required")
    assert r.status == "warn" and "not in this copy" in r.summary
    # A copy missing its submission.json or logs is still a failure, historical or not.
    bare = make_record(None, good_logs(), code=None, readme=False)
    assert status(check_record(bare, historical=True), "files.required") == "fail"
