"""Multi-process evaluation with the gloo backend gives the single-process result."""

import copy

import pytest

from gepa.bpb import position_bytes
from gepa.parallel import evaluate_on_ranks
from gepa.valdata import ValData
from tests.support.gepa_run import run_gepa


@pytest.mark.parametrize("mode", ["sliding", "ttt"])
def test_two_ranks_match_one_process(mode, tiny_model_factory, tiny_tokens, luts, make_config):
    # Each rank's share of a chunk's 4 training sequences fits one batch, as in the seed run, so the
    # number of optimizer steps does not depend on the world size.
    cfg = make_config(eval={"mode": mode}, ttt={"batch_seqs": 4})
    model = tiny_model_factory(cfg)
    state = copy.deepcopy(model.state_dict())
    single = run_gepa(copy.deepcopy(model), tiny_tokens, luts, cfg)
    data = ValData(tokens=tiny_tokens, target_bytes=position_bytes(tiny_tokens, luts))
    multi = evaluate_on_ranks(2, cfg, state, data, backend="gloo")
    assert multi.tokens_scored == single.tokens_scored
    assert multi.bytes_scored == single.bytes_scored
    assert multi.val_bpb == pytest.approx(single.val_bpb, abs=1e-6)
