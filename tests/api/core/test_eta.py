"""Queue ETA: the expected evaluation time the API shows comes from gepa's FLOP model and the
device calibration, over the validation targets the worker will actually score."""

import json

import pytest

from api.core import crud
from gepa.families.gepa import config
from gepa.families.gepa.flops import eval_flops
from gepa.flops import flops_per_second
from gepa.shards import BUNDLED_VAL_GLOB, load_validation_tokens
from tests.support.paths import DATA
from gepa.families.baseline import config as bcfg
from gepa.families.baseline.flops import eval_flops as baseline_flops

TINY = {"model": {"num_layers": 2, "model_dim": 64, "num_heads": 4, "num_kv_heads": 2, "mlp_hidden": 128,
                  "bigram_buckets": 64, "bigram_embed_dim": 16, "rope_dims": 8, "xsa_layers": 1,
                  "ve_dim": 16, "ve_layers": [1]},
        "eval": {"mode": "ttt", "seq_len": 128, "stride": 32}, "ttt": {"chunk_tokens": 2048}}


@pytest.mark.parametrize("max_tokens", [None, 10_000])
def test_estimate_matches_flop_model_over_scored_targets(max_tokens):
    text = json.dumps(TINY)
    cfg = config.loads(text)
    n = load_validation_tokens(BUNDLED_VAL_GLOB, 128).numel() - 1
    if max_tokens:
        n = (max_tokens // 128) * 128
    cpu = crud._estimated_eval_s(text, "", max_tokens, "cpu")
    gpu = crud._estimated_eval_s(text, "", max_tokens, "auto")
    assert cpu == pytest.approx(eval_flops(cfg, n).total / flops_per_second("cpu"), abs=0.05)
    assert gpu == pytest.approx(eval_flops(cfg, n).total / flops_per_second("h200"), abs=0.05)
    assert 0 <= gpu < cpu


def test_bad_config_gives_no_estimate():
    assert crud._estimated_eval_s('{"eval": {"mode": "nope"}}', "", None, "cpu") is None


@pytest.mark.parametrize("name", ["eval_standard.json", "eval_sliding.json", "eval_lora_ttt.json"])
def test_baseline_family_configs_get_their_own_estimate(name):

    text = (DATA / "baseline_small" / name).read_text()
    cfg = bcfg.from_dict(json.loads(text))
    n = load_validation_tokens(BUNDLED_VAL_GLOB, cfg.eval.seq_len).numel() - 1
    cpu = crud._estimated_eval_s(text, "", None, "cpu")
    assert cpu == pytest.approx(baseline_flops(cfg, n).total / flops_per_second("cpu"), abs=0.05)
    assert cpu > 0
