"""Rows 32, 35 and 36 of the record track against numbers from their own code
(`tests/data/baseline_rules`, written by `make_expected.py` from the records' quantizers and
sliding-window functions): the containers load as they are, each record's rule reproduces the
record's number, and what golfcheck publishes is its own every-target-once score, checked here
against a naive window-by-window scorer."""

from __future__ import annotations

import json

import pytest

from api.cli.main import main
from tests.support.baseline_rules import RULES_DATA as DATA
from tests.support.baseline_rules import TOKENIZER, VAL, artifact, naive_score, record_positions
FOLDERS = sorted(p.name for p in DATA.iterdir() if (p / "expected.json").is_file())
CASES = [(f, p.stem.removeprefix("eval_")) for f in FOLDERS for p in sorted((DATA / f).glob("eval_*.json"))]


def expected(folder: str) -> dict:
    return json.loads((DATA / folder / "expected.json").read_text())


def cli_json(capsys, *argv) -> dict:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out)


def evaluate(capsys, folder: str, case: str, impl: str = "fast") -> dict:
    return cli_json(capsys, "evaluate", artifact(folder), "--config", DATA / folder / f"eval_{case}.json",
                    "--val", VAL, "--tokenizer", TOKENIZER, "--impl", impl, "--json")


def test_every_case_has_a_reference_number():
    assert len(FOLDERS) == 4 and len(CASES) == 14
    for folder in FOLDERS:
        cases = {c for f, c in CASES if f == folder}
        assert cases == set(expected(folder)["results"])


@pytest.mark.parametrize("folder,case", CASES)
def test_the_records_rule_reproduces_the_records_number(folder, case, capsys):
    got = evaluate(capsys, folder, case)
    loss, bpb = expected(folder)["results"][case]
    assert got["family"] == "baseline"
    # What golfcheck publishes scores every target of the stream exactly once.
    assert got["unscored_targets"] == 0 and got["tokens_scored"] == got["total_targets"]
    cfg = json.loads((DATA / folder / f"eval_{case}.json").read_text())["eval"]
    if cfg["mode"] == "standard":
        figure = got
    else:
        want = record_positions(cfg["tail"], got["total_targets"], cfg["seq_len"], cfg["stride"])
        if len(want) == got["total_targets"] and max(want.values()) == 1:
            assert "record_rule" not in got["extra"]  # nothing left out: the rule is golfcheck's own
            figure = got
        else:
            figure = got["extra"]["record_rule"]
            assert figure["tail"] == cfg["tail"]
            assert figure["tokens_scored"] == sum(want.values())
            assert figure["unscored_targets"] == got["total_targets"] - len(want)
    assert figure["val_loss"] == pytest.approx(loss, abs=1e-5)
    assert figure["val_bpb"] == pytest.approx(bpb, abs=1e-5)


@pytest.mark.parametrize("folder,compression,layers,hidden,embedding", [
    ("mlp3x", "zstd", 3, 576, "fp16_passthrough"),
    ("mlp3x_11l", "zstd", 11, 96, "fp16_passthrough"),
    ("mixedquant", "zlib", 3, 576, "int8_per_row"),
    ("seq2048", "zstd", 3, 576, "fp16_passthrough"),
])
def test_the_records_containers_load_as_they_are(folder, compression, layers, hidden, embedding, capsys):
    info = cli_json(capsys, "inspect", artifact(folder), "--json")
    assert info["family"] == "baseline" and info["compression"] == compression
    tensors = {t["name"]: t for t in info["tensors"]}
    assert tensors["tok_emb.weight"]["scheme"] == embedding
    model = info["config"]["model"]
    assert (model["num_layers"], model["mlp_hidden"]) == (layers, hidden)
    rng = expected(folder)["artifact"]["quantized_value_range"]
    if folder == "mixedquant":  # int6 range for block matrices, int8 for the embedding
        assert all(-31 <= lo and hi <= 31 for name, (lo, hi) in rng.items() if name.startswith("blocks."))


@pytest.mark.parametrize("folder,case", [("mlp3x", "sliding_last_stride_s48"),
                                         ("seq2048", "sliding_gap_after_first")])
def test_golfcheck_score_and_the_records_rule_match_a_naive_scorer(folder, case, capsys):
    loss, bpb, rec_loss, rec_bpb = naive_score(folder, case)
    got = evaluate(capsys, folder, case)
    assert got["val_loss"] == pytest.approx(loss, abs=1e-6) and got["val_bpb"] == pytest.approx(bpb, abs=1e-6)
    ref_loss, ref_bpb = expected(folder)["results"][case]
    # The naive scorer reads the record's targets off golfcheck's windows: the same contexts.
    assert rec_loss == pytest.approx(ref_loss, abs=1e-5) and rec_bpb == pytest.approx(ref_bpb, abs=1e-5)


@pytest.mark.parametrize("folder,case", [("mlp3x", "sliding_last_stride_s48"),
                                         ("seq2048", "sliding_gap_after_first_s48")])
def test_fast_path_equals_plain(folder, case, capsys):
    fast, plain = evaluate(capsys, folder, case, "fast"), evaluate(capsys, folder, case, "plain")
    assert fast["tokens_scored"] == plain["tokens_scored"]
    assert fast["val_bpb"] == pytest.approx(plain["val_bpb"], abs=1e-5)
    f, p = fast["extra"]["record_rule"], plain["extra"]["record_rule"]
    assert f["tokens_scored"] == p["tokens_scored"] and f["extra_pass"] == p["extra_pass"]
    assert f["val_bpb"] == pytest.approx(p["val_bpb"], abs=1e-5)


def test_the_cli_says_which_number_is_golfchecks(capsys):
    folder, case = "seq2048", "sliding_gap_after_first"
    rc = main([str(a) for a in ("evaluate", artifact(folder), "--config", DATA / folder / f"eval_{case}.json",
                                "--val", VAL, "--tokenizer", TOKENIZER)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    want = record_positions("gap_after_first", 22528, 128, 32)
    assert "tokens_scored  22,528 of 22,528 targets" in out and "UNSCORED" not in out
    assert f"the config's rule leaves {22528 - len(want)} targets unscored" in out
    assert "record_rule.tail                             gap_after_first" in out
