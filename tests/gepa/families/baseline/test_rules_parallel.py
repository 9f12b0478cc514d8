"""The record-rule comparison on two gloo ranks gives the one-process figures: read off the shared
windows (last_stride) and from its own extra pass (gap_after_first, stride not dividing T), each
rank's share all-reduced like the score itself."""

import json

import pytest
import torch

from gepa import runner
from gepa.families.baseline.family import FAMILY, RECORD_RULE
from gepa.parallel import evaluate_on_ranks
from gepa.valdata import ValData
from tests.support.paths import DATA



@pytest.mark.parametrize("folder,case", [("mlp3x", "sliding_last_stride_s48"), ("seq2048", "sliding_gap_after_first_s48")])
def test_two_ranks_match_one_process(folder, case):
    path = DATA / "baseline_rules" / folder
    prep = runner.prepare(next(iter(path.glob("final_model.*.ptz"))), json.loads((path / f"eval_{case}.json").read_text()))
    full = FAMILY.load_data(prep.cfg, str(DATA / "baseline_small" / "fineweb_val_*.bin"), runner.default_tokenizer(FAMILY))
    data = ValData(tokens=full.tokens[:6001].clone(), target_bytes=full.target_bytes[:6001].clone())
    model = FAMILY.build_model(prep.cfg, prep.state, torch.device("cpu"))
    single = FAMILY.evaluate(model, data, prep.cfg, device=torch.device("cpu"))
    multi = evaluate_on_ranks(2, prep.cfg, prep.state, data, backend="gloo")
    assert multi.tokens_scored == single.tokens_scored == multi.total_targets and multi.unscored_targets == 0
    assert multi.val_bpb == pytest.approx(single.val_bpb, abs=1e-6)
    one, two = single.extra[RECORD_RULE], multi.extra[RECORD_RULE]
    assert one["extra_pass"] == two["extra_pass"] == (folder == "seq2048")
    assert (two["tokens_scored"], two["bytes_scored"], two["unscored_targets"]) == \
        (one["tokens_scored"], one["bytes_scored"], one["unscored_targets"])
    assert two["val_bpb"] == pytest.approx(one["val_bpb"], abs=1e-6)
