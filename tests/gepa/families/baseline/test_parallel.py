"""The baseline family on two gloo ranks gives the one-process result: sliding windows and LoRA TTT
documents are split contiguously across ranks and the sums all-reduced. (With lr 0 the adapters
stay at B = 0, so the per-rank adapter draws cannot move the number and the split alone is tested.)"""

import json

import pytest
import torch

from gepa import runner
from gepa.families.baseline.family import FAMILY
from gepa.parallel import evaluate_on_ranks
from gepa.valdata import ValData
from tests.support.paths import DATA

FIX = DATA / "baseline_small"


@pytest.mark.parametrize("case,over", [("sliding", {}), ("lora_ttt", {"baseline_lora_ttt": {"lr": 0.0}})])
def test_two_ranks_match_one_process(case, over):
    raw = json.loads((FIX / f"eval_{case}.json").read_text())
    for section, values in over.items():
        raw[section].update(values)
    prep = runner.prepare(FIX / "final_model.int8.ptz", raw)
    full = FAMILY.load_data(prep.cfg, str(FIX / "fineweb_val_*.bin"), runner.default_tokenizer(FAMILY))
    data = ValData(tokens=full.tokens[:6001].clone(), target_bytes=full.target_bytes[:6001].clone())
    model = FAMILY.build_model(prep.cfg, prep.state, torch.device("cpu"))
    single = FAMILY.evaluate(model, data, prep.cfg, device=torch.device("cpu"))
    multi = evaluate_on_ranks(2, prep.cfg, prep.state, data, backend="gloo")
    assert multi.tokens_scored == single.tokens_scored and multi.bytes_scored == single.bytes_scored
    assert multi.val_bpb == pytest.approx(single.val_bpb, abs=1e-6)
