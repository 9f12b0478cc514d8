"""CaseOps FLOP model (queue ETAs): torch-free, arithmetic of the standard eval, TTT costlier."""

from __future__ import annotations

import subprocess
import sys

from gepa.families.caseops import config as ccfg
from gepa.families.caseops.flops import eval_flops, head_per_token, trunk_per_token


def test_standard_is_slots_times_matmuls_plus_head():
    cfg = ccfg.DEFAULT.with_mode("standard")
    m = cfg.model
    assert len(m.slots[0]) + len(m.slots[1]) == 17           # layers 3-5 run three times
    per_slot = 2 * (2 * 512 * 512 + 2 * 512 * 256 + 2 * 512 * 2048) + 2 * 2048 * 512
    assert trunk_per_token(m, 2048) == 17 * per_slot
    n = 47_851_520                                            # val_tokens of every CaseOps log
    usable = ((n - 1) // 2048) * 2048
    assert eval_flops(cfg, n) == usable * (17 * per_slot + head_per_token(m))
    assert 1e15 < eval_flops(cfg, n) < 1e17
    assert eval_flops(ccfg.DEFAULT, n) > 3 * eval_flops(cfg, n)  # phased TTT re-runs windows and trains


def test_config_and_flops_import_without_torch():
    code = ("import sys; import gepa.families.caseops.config, gepa.families.caseops.flops; "
            "assert 'torch' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
