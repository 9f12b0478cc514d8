"""bench/review_devset.py: summary arithmetic and a run over a tiny development set built in tmp.

The scripts here are short samples written for this test; the real development set lives outside
the repository and is never read by the tests.
"""

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

from tests.support.paths import REPO

ROOT = REPO
_spec = importlib.util.spec_from_file_location("review_devset", ROOT / "bench" / "review_devset.py")
review_devset = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(review_devset)

CLEAN = '''
import torch
def eval_val(model, val_tokens):
    loss_sum = 0.0
    with torch.no_grad():
        for i in range(0, val_tokens.numel() - 1, 1024):
            x = val_tokens[i:i + 1024]
            y = val_tokens[i + 1:i + 1025]
            loss_sum += model(x, y).item()
    return loss_sum
def main():
    val_tokens = torch.zeros(4096)
    print(eval_val(None, val_tokens))
if __name__ == "__main__":
    main()
'''
BROKEN = "def main(:\n    pass\n"


def _row(set_, ruling, mech, flagged=False, warned=False, unreviewed=False, rules=(), seconds=0.1):
    return {"id": f"{set_}-{mech}-{flagged}-{seconds}", "set": set_, "ruling": ruling, "mechanism": mech,
            "flagged": flagged, "warned": warned, "unreviewed": unreviewed, "rules": list(rules),
            "warnings": [], "seconds": seconds}


def test_summary_arithmetic_on_hand_made_rows():
    rows = [
        _row("illegal_pr", "illegal", "slot", flagged=True, rules=["code.slot"], seconds=0.2),
        _row("illegal_pr", "illegal", "slot", flagged=True, rules=["code.rescore"], seconds=0.4),
        _row("illegal_pr", "illegal", "ngram_target_key", seconds=0.6),
        _row("merged", "legal", None, flagged=True, rules=["code.rescore"], seconds=0.8),
        _row("merged", "legal", None, unreviewed=True, seconds=1.0),
        _row("legal_pr", "legal", "throwaway_warmup", warned=True, seconds=1.2),
    ]
    s = review_devset.summarize(rows)
    assert s["sets"]["illegal_pr"] == {"entries": 3, "reviewed": 3, "flagged": 2, "warned": 0, "needs_review": 0,
                                       "unreviewed": 0}
    assert s["sets"]["merged"] == {"entries": 2, "reviewed": 1, "flagged": 1, "warned": 0, "needs_review": 0,
                                   "unreviewed": 1}
    assert s["sets"]["legal_pr"]["warned"] == 1
    assert (s["recall"]["caught"], s["recall"]["total"]) == (2, 3)
    assert s["recall"]["rate"] == pytest.approx(2 / 3)
    assert s["recall"]["by_mechanism"]["slot"] == {"total": 2, "caught": 2, "expected_rule": 1}
    assert s["recall"]["by_mechanism"]["ngram_target_key"] == {"total": 1, "caught": 0, "expected_rule": 0}
    assert s["recall"]["missed"] == [rows[2]["id"]]
    assert (s["false_flags"]["flagged"], s["false_flags"]["total"]) == (1, 3)
    assert s["false_flags"]["unreviewed_ids"] == [rows[4]["id"]]
    # median of 0.2 .. 1.2 in steps of 0.2 is the mean of the middle two: (0.6 + 0.8) / 2
    assert s["seconds"]["median"] == pytest.approx(0.7)
    assert s["seconds"]["max"] == pytest.approx(1.2)


def _entry(root: Path, set_, id_, text, ruling, **extra):
    d = root / set_ / id_
    d.mkdir(parents=True)
    (d / "train_gpt.py").write_text(text, encoding="utf-8")
    return {"id": id_, "set": set_, "files": ["train_gpt.py"], "ruling": ruling, **extra}


def test_run_over_tiny_devset(tmp_path):
    entries = [
        _entry(tmp_path, "legal_pr", "clean", CLEAN, "legal", mechanism="none"),
        _entry(tmp_path, "legal_pr", "broken", BROKEN, "legal", mechanism="none"),
        _entry(tmp_path, "merged", "baseline_copy", CLEAN, "legal",
               record_folder="track_10min_16mb/2026-03-17_NaiveBaseline"),
        _entry(tmp_path, "illegal_pr", "flagged_on", CLEAN, "illegal", mechanism="slot",
               settings={"SLOT_ENABLED": "1"}),
    ]
    (tmp_path / "manifest.json").write_text(json.dumps(entries), encoding="utf-8")
    results, summary = review_devset.run(tmp_path)
    by_id = {r["id"]: r for r in results}
    assert by_id["broken"]["unreviewed"] and not by_id["broken"]["flagged"]
    assert not by_id["clean"]["unreviewed"]
    # The merged entry went through check_record with the record's real logs, so it was reviewed.
    assert not by_id["baseline_copy"]["unreviewed"]
    assert summary["sets"]["legal_pr"]["entries"] == 2 and summary["sets"]["legal_pr"]["unreviewed"] == 1
    assert summary["sets"]["merged"]["entries"] == 1
    assert summary["recall"]["total"] == 1
    assert summary["recall"]["caught"] == sum(r["flagged"] for r in results if r["ruling"] == "illegal")
    assert summary["false_flags"]["total"] == 3
    assert summary["false_flags"]["flagged"] == sum(r["flagged"] for r in results if r["ruling"] == "legal")


def test_bad_devset_is_a_clear_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        review_devset.main([str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "manifest.json not found" in err and "Traceback" not in err
    (tmp_path / "manifest.json").write_text('[{"id": "x", "set": "nope"}]', encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        review_devset.main([str(tmp_path)])
    assert exc.value.code == 2 and "lacks" in capsys.readouterr().err


def test_sources_list_tells_a_matching_copy_from_a_changed_one(tmp_path):
    entries = [_entry(tmp_path, "legal_pr", "same", CLEAN, "legal"),
               _entry(tmp_path, "legal_pr", "edited", CLEAN, "legal"),
               _entry(tmp_path, "legal_pr", "new", CLEAN, "legal")]
    (tmp_path / "manifest.json").write_text(json.dumps(entries), encoding="utf-8")
    digest = hashlib.sha256(CLEAN.encode()).hexdigest()
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps([
        {"set": "legal_pr", "id": "same", "file": "train_gpt.py", "sha256": digest},
        {"set": "legal_pr", "id": "edited", "file": "train_gpt.py", "sha256": digest},
    ]), encoding="utf-8")
    # One byte changed after the list was written: the rebuilt copy is not the measured one.
    (tmp_path / "legal_pr" / "edited" / "train_gpt.py").write_text(CLEAN + "\n", encoding="utf-8")
    results, summary = review_devset.run(tmp_path, sources=review_devset.load_sources(sources))
    by_id = {r["id"]: r["copy_check"] for r in results}
    assert by_id == {"same": "match", "edited": "mismatch", "new": "unrecorded"}
    assert summary["copies"] == {"match": 1, "mismatch": 1, "unrecorded": 1, "ids_not_matching": ["edited", "new"]}


def test_sources_list_without_hashes_is_a_clear_exit_2(tmp_path, capsys):
    bad = tmp_path / "sources.json"
    bad.write_text('[{"set": "merged", "id": "x", "file": "train_gpt.py"}]', encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        review_devset.load_sources(bad)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "sha256" in err and "Traceback" not in err


def test_the_committed_provenance_list_names_a_source_and_a_hash_for_every_file():
    # bench/devset_sources.json is how a later session rebuilds the development set and shows it
    # holds the same bytes (docs/compliance-validation.md quotes the figures measured on it).
    path = ROOT / "bench" / "devset_sources.json"
    rows = json.loads(path.read_text(encoding="utf-8"))
    table = review_devset.load_sources(path)
    assert len(table) == len(rows), "each (set, id, file) is listed once"
    for r in rows:
        assert len(r["sha256"]) == 64 and int(r["sha256"], 16) >= 0, r
        assert r["set"] in review_devset.SETS and r["ruling"] == ("illegal" if r["set"] == "illegal_pr" else "legal"), r
        assert (r.get("repo") and r.get("commit") and r.get("path")) or r.get("index_id") or r.get("source"), r
        if r["set"] == "merged":
            assert (review_devset.RECORDS / r["record_folder"]).is_dir(), r["record_folder"]
