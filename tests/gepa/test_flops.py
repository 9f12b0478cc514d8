"""FLOP model of the seed evaluation against the facts of the seed run."""

import pytest

from gepa.families.gepa import config
from gepa.families.gepa.flops import eval_flops
from gepa.flops import flops_per_second
import itertools
from gepa.flops import window_counts
from gepa.windows import plan_windows
import subprocess
import sys


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
    assert total / flops_per_second(measured_flops_per_s=total / 100) == pytest.approx(100)
    assert flops_per_second("h200") > flops_per_second("a100")


def test_closed_form_window_counts_match_the_window_plan():
    for total, seq_len, stride, keep_first, tail in itertools.product(
            range(0, 300, 7), (8, 16, 64), (1, 4, 8, 16), (False, True), ("reference", "exact_once")):
        if stride > seq_len:
            continue
        plan = plan_windows(total, seq_len, stride, keep_first=keep_first, tail=tail)
        assert window_counts(total, seq_len, stride, keep_first=keep_first, tail=tail) == \
            (len(plan), plan.scored_targets()), (total, seq_len, stride, keep_first, tail)


def test_estimating_an_evaluation_does_not_load_torch():
    """The API shows queue ETAs; importing torch there would cost ~200 MB per API process."""
    code = ("import sys, json; from api.core import crud; "
            "v = crud._estimated_eval_s(json.dumps({'eval': {'mode': 'ttt'}}), '', None, 'auto'); "
            "assert v and v > 0, v; assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
