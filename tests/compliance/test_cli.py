"""`golfcheck check` / `golfcheck scan-code` through the real dispatcher (exit codes, JSON shape)."""
import json

from api.cli import main
from gepa.compliance import RULE_IDS, RULESET_VERSION

from conftest import RECORDS, SAMPLES, good_logs, good_submission


def test_scan_code_json_and_exit_codes(capsys):
    assert main(["scan-code", str(SAMPLES / "illegal_slot.py"), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "flagged"
    assert {"rule", "line", "message"} <= set(out["findings"][0]) and out["findings"][0]["rule"] == "code.slot"
    assert main(["scan-code", str(SAMPLES / "legal_phased.py"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"verdict": "clean", "findings": []}


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
