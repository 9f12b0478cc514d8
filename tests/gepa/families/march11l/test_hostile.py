"""Hostile and broken march11l containers through the public CLI: each is one line on stderr,
exit 2, naming what is wrong, and no output. Also: the family on two gloo ranks gives the
one-process result for standard and sliding evaluation (windows split contiguously, sums
all-reduced). TTT is not compared: like the reference on several GPUs, each rank trains on its
share of a chunk's sequences and the gradients are averaged, which is a different SGD run."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from api.cli.main import main
from gepa import codec, runner
from gepa.parallel import evaluate_on_ranks
from gepa.valdata import ValData
from tests.support.paths import REPO

FIX = REPO / "tests" / "data" / "march11l_small"
VAL = str(FIX / "fineweb_val_*.bin")
ART = FIX / "final_model.int6.ptz"


def _broken(edit) -> dict:
    obj = copy.deepcopy(codec.read_artifact(ART).container)
    edit(obj)
    return obj


def _q_out_of_range(obj):
    obj["w"]["blocks.0.mlp.fc.weight.q"][0, 0] = 40  # int6 holds [-31, 31]


def _scale_missing(obj):
    del obj["w"]["blocks.1.mlp.proj.weight.scale"]


def _unknown_tag(obj):
    obj["m"]["blocks.0.mlp.fc.weight"] = {"type": "int3"}


def _nan_passthrough(obj):
    obj["w"]["smear.gate"][0] = float("nan")


def _extra_tensor(obj):
    obj["w"]["blocks.0.attn.c_q.weight.extra"] = torch.zeros(2)


@pytest.mark.parametrize("edit,compression,needle", [
    (_q_out_of_range, "zstd", "blocks.0.mlp.fc.weight"),
    (_scale_missing, "xz", "blocks.1.mlp.proj.weight.scale"),
    (_unknown_tag, "zstd", "blocks.0.mlp.fc.weight"),
    (_nan_passthrough, "zstd", "smear.gate"),
    (_extra_tensor, "zstd", "blocks.0.attn.c_q.weight.extra"),
])
def test_a_broken_container_is_one_line_naming_the_tensor(edit, compression, needle, tmp_path, capsys):
    path = tmp_path / "final_model.int6.ptz"
    codec.write_artifact(path, _broken(edit), compression=compression)
    rc = main(["evaluate", str(path), "--config", str(FIX / "eval_standard.json"), "--val", VAL])
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and out == "" and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("golfcheck: error: ") and needle in lines[0]


@pytest.mark.parametrize("case", ["standard", "sliding"])
def test_two_ranks_match_one_process(case):
    prep = runner.prepare(ART, json.loads((FIX / f"eval_{case}.json").read_text()))
    full = prep.family.load_data(prep.cfg, VAL, runner.default_tokenizer(prep.family))
    data = ValData(tokens=full.tokens[:6145].clone(), target_bytes=full.target_bytes[:6145].clone())
    model = prep.family.build_model(prep.cfg, prep.state, torch.device("cpu"))
    single = prep.family.evaluate(model, data, prep.cfg, device=torch.device("cpu"))
    multi = evaluate_on_ranks(2, prep.cfg, prep.state, data, backend="gloo")
    assert multi.tokens_scored == single.tokens_scored and multi.bytes_scored == single.bytes_scored
    assert multi.val_bpb == pytest.approx(single.val_bpb, abs=1e-6)
