"""`golfcheck check` / `golfcheck scan-code` through the real dispatcher (exit codes, JSON shape)."""
import json

from api.cli.main import main
from gepa.compliance import RULE_IDS, RULESET_VERSION

from tests.support.compliance import SAMPLES, good_logs, good_submission
from tests.support.paths import RECORDS
from gepa.shards import fingerprint, write_shard


def test_scan_code_json_and_exit_codes(capsys):
    assert main(["scan-code", str(SAMPLES / "illegal_slot.py"), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "flagged"
    assert {"rule", "line", "message"} <= set(out["findings"][0]) and out["findings"][0]["rule"] == "code.slot"
    assert main(["scan-code", str(SAMPLES / "legal_phased.py"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["verdict"], out["findings"], out["files"]) == ("clean", [], ["legal_phased.py"])
    assert out["code_bytes"] == (SAMPLES / "legal_phased.py").stat().st_size


def test_scan_code_bad_input(tmp_path, capsys):
    assert main(["scan-code", str(tmp_path / "none.py")]) == 2
    bad = tmp_path / "bad.py"
    bad.write_text("def x(:\n")
    assert main(["scan-code", str(bad)]) == 2
    assert "not valid Python" in capsys.readouterr().err


def test_check_exit_codes(make_record, capsys):
    good = make_record(good_submission(), good_logs(), code=(SAMPLES / "legal_score_first.py").read_text())
    assert main(["check", str(good)]) == 0
    bad = make_record(good_submission(), good_logs(), code=(SAMPLES / "illegal_network.py").read_text())
    assert main(["check", str(bad), "--json"]) == 1
    capsys.readouterr()
    assert main(["check", str(bad.parent / "missing")]) == 2
    assert main(["check", str(good), "--artifact", str(good / "nope.ptz")]) == 2


def test_check_real_record_json(capsys):
    folder = RECORDS / "track_10min_16mb" / "2026-04-14_MultiPhaseGlobalSGD_PhasedTTT"
    rc = main(["check", str(folder), "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == (1 if d["status"] == "fail" else 0)
    assert d["ruleset"] == RULESET_VERSION and [r["rule"] for r in d["results"]] == list(RULE_IDS)
    assert {"rule", "status", "summary", "evidence", "severity", "description"} <= set(d["results"][0])


def test_check_reads_eval_json_and_finds_the_artifact(capsys, make_record, tmp_path):
    """`eval.json` (what `submit` and the README use) is the config `check` reads, and a folder's
    one final_model* file is the artifact it validates, as the service does."""
    folder = make_record(good_submission(), good_logs(), code="print('x')\n")
    (folder / "eval.json").write_text('{"model": {"num_layers": "two"}}')
    (folder / "final_model.int6.ptz").write_bytes(b"not an artifact")
    assert main(["check", str(folder), "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    rules = {r["rule"]: r for r in d["results"]}
    assert rules["artifact.integrity"]["status"] == "fail" and rules["artifact.integrity"]["kind"] == "artifact-format"
    assert d["verdict"] == "fail"
    (folder / "final_model.int6.ptz").unlink()
    assert main(["check", str(folder), "--json"]) == 1
    rules = {r["rule"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert rules["config.legal"]["status"] == "fail" and rules["config.legal"]["evidence"][0]["file"] == "eval.json"


def test_fingerprint_prints_the_canonical_value(capsys, tmp_path):
    shard = tmp_path / "fineweb_val_000000.bin"
    write_shard(shard, list(range(100)))
    assert main(["fingerprint", str(tmp_path / "fineweb_val_*.bin"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"val_sha256": fingerprint([shard]), "shards": 1, "tokens": 100}


def test_scan_code_logs_decide_reachability(tmp_path, capsys):
    """`scan-code --logs` evaluates flags under the logged settings, as `check` does."""
    src = (SAMPLES / "legal_flags_off.py").read_text()
    script = tmp_path / "run.py"
    script.write_text(src)
    assert main(["scan-code", str(script), "--json"]) == 0
    capsys.readouterr()
    log = tmp_path / "train_seed1.log"
    log.write_text("Hyperparameters:\n  ngram_eval_order: 3\n  download_data: 1\nstep:1/10 train_loss:5.0\n")
    assert main(["scan-code", str(script), "--logs", str(log), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert {"code.target-in-key", "code.network"} <= {f["rule"] for f in out["findings"]}
    assert main(["scan-code", str(script), "--logs", str(tmp_path / "missing.log")]) == 2
