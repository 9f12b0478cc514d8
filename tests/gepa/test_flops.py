"""FLOP model of the seed evaluation against the facts of the seed run."""

import pytest

from gepa import config
from gepa.flops import estimate_seconds, eval_flops


def test_seed_evaluation_geometry_and_scale():
    full = eval_flops(config.DEFAULT, 62_021_632)
    plain = eval_flops(config.DEFAULT, 62_021_632, plain=True)
    assert full.windows == 969_088                      # "total_windows=969088" in the seed log
    assert full.trained_tokens == 1892 * 32768 * 10     # every chunk but the last, 10 epochs
    # The GPU issue's estimate: about 1.5e17 FLOP of scoring and 1.4e17 of training.
    assert plain.score == pytest.approx(1.5e17, rel=0.05)
    assert full.train == pytest.approx(1.4e17, rel=0.05)
    assert full.score < plain.score                     # the last block and head run only where scored


def test_estimate_uses_measured_rate_when_given():
    cfg = config.DEFAULT
    total = eval_flops(cfg, 62_021_632).total
    assert estimate_seconds(cfg, 62_021_632, measured_flops_per_s=total / 100) == pytest.approx(100)
    assert estimate_seconds(cfg, 62_021_632, "h200") < estimate_seconds(cfg, 62_021_632, "a100")
