"""The review catches the target where no name says so, and legal twins stay unflagged.

Each sample in `samples/` was written for this test to reproduce one mechanism of a ruled PR
(#797: the target read at positions one past the window inside a hash helper; #278: a loss
dropped where shipped content equals the target; #615: calibration on training data after a
loop that used the whole time budget) next to a legal twin that differs only in the detail the
ruling turns on. The first line of each sample states the expected outcome.
"""

from pathlib import Path

import pytest

from gepa.compliance.review import scan_code

SAMPLES = Path(__file__).resolve().parent / "samples"
# The samples of this file state their outcome on the first line (the older samples in the same
# folder are exercised by test_review.py).
CASES = sorted(p for p in SAMPLES.glob("*.py") if p.read_text(encoding="utf-8").startswith("# expect:"))


def _expected(path: Path) -> tuple[str, str | None]:
    head = path.read_text(encoding="utf-8").splitlines()[0]
    words = head.removeprefix("# expect:").split()
    return (words[0], words[1] if len(words) > 1 else None)


def test_every_sample_states_its_expectation():
    assert len(CASES) >= 7
    for p in CASES:
        assert _expected(p)[0] in ("fail", "pass"), p.name


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_sample_outcome(path: Path):
    outcome, rule = _expected(path)
    rep = scan_code(path.read_text(encoding="utf-8"), path.name)
    errors = {f.rule for f in rep.findings if f.severity == "error"}
    if outcome == "fail":
        assert rule in errors, f"{path.name}: expected {rule}, got {sorted(errors)}"
        assert rep.verdict == "flagged"
    else:
        assert not errors, f"{path.name}: legal twin flagged as {sorted(errors)}"
        assert rep.verdict == "clean"


def test_target_key_evidence_follows_positions_into_the_helper():
    src = (SAMPLES / "illegal_target_positions.py").read_text(encoding="utf-8")
    lines = src.splitlines()
    rep = scan_code(src, "s.py")
    hit = next(f for f in rep.findings if f.rule == "code.target-in-key")
    # The chain names where the positions are built, the helper call, the line that mixes
    # `toks[at]` into the key, and the table read -- as file:line, in the order the data flows.
    def at(text):
        return next(i + 1 for i, line in enumerate(lines) if text in line)
    want = [at("np.arange(a + 1"), at("codes(toks, span"), at("^ toks[at]"), at("joint[full]")]
    assert [int(step.split(":")[1].split()[0]) for step in hit.chain] == want


def test_paid_prefix_evidence_is_the_comparison_and_the_edit():
    src = (SAMPLES / "illegal_stored_match.py").read_text(encoding="utf-8")
    lines = src.splitlines()
    rep = scan_code(src, "s.py")
    hit = next(f for f in rep.findings if f.rule == "code.paid-prefix")
    cmp_line = next(i + 1 for i, line in enumerate(lines) if "== nxt[:k]" in line)
    edit_line = next(i + 1 for i, line in enumerate(lines) if "*= (~hit)" in line)
    assert hit.line == edit_line
    assert [int(s.split(":")[1].split()[0]) for s in hit.chain] == [cmp_line, edit_line]


def test_calibration_after_budget_names_the_budget_test_and_the_late_read():
    src = (SAMPLES / "illegal_calib_after_budget.py").read_text(encoding="utf-8")
    lines = src.splitlines()
    rep = scan_code(src, "s.py")
    hit = next(f for f in rep.findings if f.rule == "code.calib-budget")
    assert hit.severity == "error"
    budget = next(i + 1 for i, line in enumerate(lines) if "> LIMIT_S" in line)
    late = next(i + 1 for i, line in enumerate(lines) if "stats = activation_stats(net)" in line)
    assert [int(s.split(":")[1].split()[0]) for s in hit.chain] == [budget, late]


def test_calibration_heuristic_without_a_loop_in_sight_only_warns():
    # No training loop to order against: the name-based signal stays a warning.
    src = '''
import glob
import numpy as np
import torch
MAX_WALLCLOCK_SECONDS = 600.0


def gptq_calibrate(model, train_batches):
    return [b.float().T @ b.float() for b in train_batches]


def main():
    train = torch.from_numpy(np.fromfile(sorted(glob.glob("data/fineweb_train_*.bin"))[0], dtype=np.uint16))
    print(len(gptq_calibrate(torch.nn.Linear(8, 8), train.view(-1, 8))))


main()
'''
    rep = scan_code(src)
    assert [(f.rule, f.severity) for f in rep.findings] == [("code.calib-budget", "warning")]
    assert rep.verdict == "clean"
