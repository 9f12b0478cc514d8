"""Every `eval_*.json` of the public CaseOps fixture, through the CLI, against the numbers the
reference's own evaluation returned (fp32, CPU): 1e-5 BPB for standard, 2e-4 for TTT. The phased
runs also read the 04-19 prep script's sidecar: golfcheck scores with its canonical bytes, and
reports the sidecar's (inflated) figure next to it."""

from __future__ import annotations

import json

import pytest

from api.cli.main import main
from tests.support.paths import REPO

ROOT = REPO
FX = ROOT / "tests" / "data" / "caseops_small"
EXPECTED = json.loads((FX / "expected.json").read_text())
TOKENIZER = ROOT / "gepa" / "assets" / "fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model"
PREP0419 = FX / "sidecar_prep0419" / "fineweb_val_bytes_000000.bin"


def evaluate(capsys, config: str, *extra) -> dict:
    rc = main(["evaluate", str(FX / "final_model.int6.ptz"), "--config", str(FX / config), "--val",
               str(FX / "fineweb_val_*.bin"), "--tokenizer", str(TOKENIZER), "--json", *map(str, extra)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out)


def test_standard_matches_reference_and_reports_the_canonical_sidecar(capsys):
    r = evaluate(capsys, "eval_standard.json")
    want = EXPECTED["results"]["standard/canonical"]
    assert r["family"] == "caseops" and r["mode"] == "standard"
    assert abs(r["val_bpb"] - want["val_bpb"]) < 1e-5
    assert abs(r["val_loss"] - want["val_loss"]) < 1e-5
    # 100 of 101 sequences of 256 (the batch truncation), bytes = the canonical sum over them.
    assert r["tokens_scored"] == 100 * 256
    rep = r["extra"]["caseops_bytes"]
    assert rep["verdict_uses"] == "canonical" and rep["documents_without_text"] == 0
    # The fixture's own sidecar is the canonical one: found next to the shards, identical.
    assert rep["sidecar"] == "fineweb_val_bytes_000000.bin" and rep["sidecar_total"] == rep["canonical_total"]
    assert rep["sidecar_documents_differing"] == 0
    assert rep["canonical_whole_stream_total"] == EXPECTED["data"]["raw_utf8_bytes_full"]


def test_standard_with_the_0419_prep_sidecar_scores_canonical_and_shows_the_inflation(capsys):
    r = evaluate(capsys, "eval_standard.json", "--sidecar", PREP0419)
    res = EXPECTED["results"]
    assert abs(r["val_bpb"] - res["standard/canonical"]["val_bpb"]) < 1e-5   # the verdict ignores it
    rep = r["extra"]["caseops_bytes"]
    assert abs(rep["sidecar_val_bpb"] - res["standard/prep0419"]["val_bpb"]) < 1e-5
    assert rep["sidecar_whole_stream_total"] == EXPECTED["data"]["sidecar_sum_full"]["prep0419"]
    whole = rep["sidecar_whole_stream_total"] / rep["canonical_whole_stream_total"] - 1
    assert 0.05 < whole < 0.06   # +5.7 %: about 3 bytes per case-operator token
    assert rep["sidecar_relative_diff"] > 0.04 and rep["sidecar_documents_differing"] == 14


@pytest.mark.parametrize("case,config,sidecar", [
    ("lora_only_adam", "eval_lora_only_adam.json", None),
    ("phased_adam", "eval_phased_adam.json", PREP0419),
    ("phased_sgd", "eval_phased_sgd.json", None),
])
def test_ttt_modes_match_reference(capsys, case, config, sidecar):
    r = evaluate(capsys, config, *(["--sidecar", sidecar] if sidecar else []))
    want = EXPECTED["results"][f"{case}/canonical"]
    assert r["mode"] == "caseops_phased_ttt"
    assert abs(r["val_bpb"] - want["val_bpb"]) < 2e-4
    assert abs(r["val_loss"] - want["val_loss"]) < 2e-4
    # TTT scores every target of the truncated stream exactly once.
    assert r["tokens_scored"] == EXPECTED["data"]["val_tokens_after_truncation"] - 1
    rep = r["extra"]["caseops_bytes"]
    assert rep["canonical_total"] == EXPECTED["data"]["sidecar_sum_after_truncation"]["canonical"]
    if sidecar:
        assert abs(rep["sidecar_val_bpb"] - EXPECTED["results"][f"{case}/prep0419"]["val_bpb"]) < 2e-4
        assert rep["sidecar_total"] == EXPECTED["data"]["sidecar_sum_after_truncation"]["prep0419"]
