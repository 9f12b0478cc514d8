"""Two-pass rescoring and a target keyed through a chain of helpers (the two mechanisms of PR #869).

#869 scored each chunk with an n-gram cache that it updated only after the chunk (legal on its
own), then re-scored every chunk with the cache built from the whole validation stream and
overwrote the chunk's loss slot that the reported score sums. Its lookup took the target into the
hash key through lookup -> key builder -> hash. The samples in `samples/` reproduce both shapes
(written for these tests) next to legal twins that differ only in the detail the ruling turns on.
"""

from pathlib import Path

import pytest

from gepa.compliance.review import scan_code, scan_sources
from tests.gepa.compliance.test_review_hidden_targets import SAMPLES, _expected

TWOPASS = ("illegal_twopass_replace", "legal_scorefirst_count_cache", "illegal_target_key_chain",
           "legal_key_chain_context_only")


def _src(stem: str) -> str:
    return (SAMPLES / f"{stem}.py").read_text(encoding="utf-8")


def _line(src: str, text: str, nth: int = 0) -> int:
    return [i + 1 for i, line in enumerate(src.splitlines()) if text in line][nth]


def _chain_lines(finding) -> list[int]:
    return [int(step.split(":")[1].split()[0]) for step in finding.chain]


@pytest.mark.parametrize("stem", TWOPASS)
def test_samples_state_their_outcome(stem: str):
    outcome, rule = _expected(SAMPLES / f"{stem}.py")
    assert outcome == ("fail" if stem.startswith("illegal") else "pass")
    assert rule in (None, "code.rescore", "code.target-in-key")


def test_second_pass_overwriting_the_score_slot_fails_rescore():
    src = _src("illegal_twopass_replace")
    rep = scan_code(src, "s.py")
    hit = [f for f in rep.findings if f.rule == "code.rescore"]
    assert len(hit) == 1 and hit[0].severity == "error" and rep.verdict == "flagged"
    # The finding sits on the second write; its evidence is the first-pass write, the cache update
    # from validation tokens, the overwrite, and the sum that reports the slots.
    assert hit[0].line == _line(src, "chunk_nll[ci] = -np.log(p).sum()", 1)
    assert _chain_lines(hit[0]) == [_line(src, "chunk_nll[ci] = -np.log(p).sum()", 0),
                                    _line(src, "cache.add(val, lo, hi)"),
                                    _line(src, "chunk_nll[ci] = -np.log(p).sum()", 1),
                                    _line(src, "return float(chunk_nll.sum())")]
    # The count table itself is updated inside the scoring loop: not the (wrong) cache finding.
    assert not [f for f in rep.findings if f.rule == "code.val-cache"]


def test_score_first_count_cache_in_a_class_passes_every_code_rule():
    rep = scan_code(_src("legal_scorefirst_count_cache"), "s.py")
    assert rep.findings == [] and rep.verdict == "clean"


def test_second_pass_behind_a_flag_is_reviewed_under_the_logged_settings():
    src = _src("illegal_twopass_replace").replace('os.environ.get("RESCORE", "1")', 'os.environ.get("RESCORE", "0")')
    assert scan_code(src, "train_gpt.py").verdict == "clean"
    rep = scan_sources({"train_gpt.py": src}, settings=[{"RESCORE": "1"}])
    assert [f.rule for f in rep.findings if f.severity == "error"] == ["code.rescore"]


_SCORER = '''
import glob
import numpy as np
import torch
import torch.nn.functional as F


def load_val():
    return np.concatenate([np.fromfile(p, dtype="<u2") for p in sorted(glob.glob("data/fineweb_val_*.bin"))])


class Table:
    def __init__(self):
        self.rows = np.ones((4096, 1024))

    def probs(self, toks, at):
        r = self.rows[(toks[at - 1].astype(np.int64) * 1031) & 4095]
        return r / r.sum(axis=1, keepdims=True)

    def update_batch(self, toks, lo, hi):
        at = np.arange(lo, hi)
        self.rows[(toks[at - 1].astype(np.int64) * 1031) & 4095] += 1.0


def score_chunk(model, table, val, lo, hi):
    y = val[lo:hi].astype(np.int64)
    with torch.no_grad():
        logp = F.log_softmax(model(torch.from_numpy(val[lo - 1:hi - 1].astype(np.int64))), -1).numpy()
    p = 0.5 * np.exp(logp[np.arange(hi - lo), y]) + 0.5 * table.probs(val, np.arange(lo, hi))[np.arange(hi - lo), y]
    return float(-np.log(p).sum())
'''


def test_rescore_through_a_scoring_helper_into_a_list():
    src = _SCORER + '''

def evaluate(model, val, n=8, size=1024):
    table = Table()
    losses = [0.0] * n
    for ci in range(n):
        losses[ci] = score_chunk(model, table, val, 1 + ci * size, 1 + (ci + 1) * size)
        table.update_batch(val, 1 + ci * size, 1 + (ci + 1) * size)
    for ci in range(n // 2):
        losses[ci] = score_chunk(model, table, val, 1 + ci * size, 1 + (ci + 1) * size)
    return sum(losses) / (n * size)


print(evaluate(torch.nn.Identity(), load_val()))
'''
    rep = scan_code(src)
    hit = [f for f in rep.findings if f.rule == "code.rescore"]
    assert hit and hit[0].line == _line(src, "losses[ci] = score_chunk", 1)
    assert _chain_lines(hit[0])[1] == _line(src, "table.update_batch(val,")


def test_dict_slots_rescored_after_a_count_update():
    src = _SCORER + '''

def evaluate(model, val, n=8, size=1024):
    table = Table()
    per_doc = {}
    for ci in range(n):
        per_doc[ci] = score_chunk(model, table, val, 1 + ci * size, 1 + (ci + 1) * size)
        table.rows[(val[1 + ci * size:1 + (ci + 1) * size].astype(np.int64) * 1031) & 4095] += 1.0
    for ci in range(n):
        per_doc[ci] = score_chunk(model, table, val, 1 + ci * size, 1 + (ci + 1) * size)
    return sum(per_doc.values()) / (n * size)


print(evaluate(torch.nn.Identity(), load_val()))
'''
    rep = scan_code(src)
    assert [f.rule for f in rep.findings if f.severity == "error"] == ["code.rescore"]


@pytest.mark.parametrize("second", [
    # The same chunks scored again with nothing updated in between: the same numbers, no leak.
    '''    for ci in range(n):
        losses[ci] = score_chunk(model, Table(), val, 1 + ci * size, 1 + (ci + 1) * size)
''',
    # A later loop that normalises the slots, it does not score into them.
    '''    for ci in range(n):
        losses[ci] = losses[ci] / size
''',
    # A second evaluation into its own slots, reported separately.
    '''    other = [0.0] * n
    for ci in range(n):
        other[ci] = score_chunk(model, table, val, 1 + ci * size, 1 + (ci + 1) * size)
    print(sum(other))
''',
])
def test_two_loops_that_are_not_a_rescore_stay_clean(second: str):
    src = _SCORER + '''

def evaluate(model, val, n=8, size=1024):
    table = Table()
    losses = [0.0] * n
    for ci in range(n):
        losses[ci] = score_chunk(model, Table(), val, 1 + ci * size, 1 + (ci + 1) * size)
        table.update_batch(val, 1 + ci * size, 1 + (ci + 1) * size)
''' + second + '''    return sum(losses) / (n * size)


print(evaluate(torch.nn.Identity(), load_val()))
'''
    rep = scan_code(src)
    assert not [f for f in rep.findings if f.severity == "error"], [f.message for f in rep.findings]


def test_target_enters_the_key_through_a_chain_of_helpers():
    src = _src("illegal_target_key_chain")
    rep = scan_code(src, "s.py")
    hit = [f for f in rep.findings if f.rule == "code.target-in-key"]
    assert len(hit) == 1 and hit[0].severity == "error" and rep.verdict == "flagged"
    assert hit[0].line == _line(src, "self.joint[full]")
    # target -> lookup -> key builder -> hash helper -> table read -> score, as file:line steps.
    assert _chain_lines(hit[0]) == [_line(src, "tgt = toks[lo:hi].numpy()"),
                                    _line(src, "cache.lookup(val, np.arange(lo, hi), tgt)"),
                                    _line(src, "full = self.joint_keys(toks, at, nxt)"),
                                    _line(src, "return fold(self.context(toks, at), nxt, 2)"),
                                    _line(src, "return h ^ (extra.astype"),
                                    _line(src, "self.joint[full]"),
                                    _line(src, "loss_sum += float(-np.log(p).sum())")]


def test_context_only_key_through_the_same_chain_passes():
    rep = scan_code(_src("legal_key_chain_context_only"), "s.py")
    assert rep.findings == [] and rep.verdict == "clean"


def test_target_keyed_return_of_a_helper_that_accumulates_the_hash():
    # The #809-lineage hash helper: `h ^= targets * P` in a loop, `return h & mask`, re-encoded by
    # the caller; the helper is reached from a lookup method the scorer hands the targets to.
    src = '''
import glob
import numpy as np
import torch
import torch.nn.functional as F
PR = np.array([36313, 27191, 51647], dtype=np.uint64)


def load_val():
    return np.concatenate([np.fromfile(p, dtype="<u2") for p in sorted(glob.glob("data/fineweb_val_*.bin"))])


def hash_full(tokens_np, positions, targets, n, mask):
    h = np.zeros(len(positions), dtype=np.uint64)
    for k in range(n - 1):
        h ^= tokens_np[positions - (n - 1) + k].astype(np.uint64) * PR[k]
    h ^= targets.astype(np.uint64) * PR[n - 1]
    return h & np.uint64(mask)


class Cache:
    def __init__(self):
        self.full = [np.zeros(1 << 16, dtype=np.int32) for _ in range(4)]

    def batch_lookup(self, tokens_np, positions, targets):
        out = np.zeros(len(positions))
        for n in (3, 2):
            ok = positions >= n - 1
            elig_tgt = targets[ok]
            keys = hash_full(tokens_np, positions[ok], elig_tgt, n, (1 << 16) - 1).astype(np.int64)
            out[ok] = self.full[n][keys]
        return out


def evaluate(model, val, size=1024):
    cache = Cache()
    loss_sum = 0.0
    for lo in range(2, len(val) - size, size):
        x = torch.from_numpy(val[lo - 1:lo - 1 + size].astype(np.int64))
        y = torch.from_numpy(val[lo:lo + size].astype(np.int64))
        nll = F.cross_entropy(model(x), y, reduction="none").numpy()
        ng = cache.batch_lookup(val, np.arange(lo, lo + size), y.numpy())
        loss_sum += float(-np.log(0.5 * np.exp(-nll) + 0.5 * ng).sum())
    return loss_sum


print(evaluate(torch.nn.Identity(), load_val()))
'''
    rep = scan_code(src)
    hit = [f for f in rep.findings if f.rule == "code.target-in-key"]
    assert hit and hit[0].line == _line(src, "out[ok] = self.full[n][keys]")
    assert _line(src, "h ^= targets.astype") in _chain_lines(hit[0])


def test_samples_folder_is_the_shared_one():
    assert SAMPLES == Path(__file__).resolve().parent / "samples"


def test_one_write_on_every_pass_of_an_outer_loop_is_a_rescore():
    src = _SCORER + '''

def evaluate(model, val, n=8, size=1024, passes=2):
    table = Table()
    losses = np.zeros(n)
    for pass_idx in range(passes):
        for ci in range(n):
            losses[ci] = score_chunk(model, table, val, 1 + ci * size, 1 + (ci + 1) * size)
            if pass_idx == 0:
                table.update_batch(val, 1 + ci * size, 1 + (ci + 1) * size)
    return float(losses.sum()) / (n * size)


print(evaluate(torch.nn.Identity(), load_val()))
'''
    rep = scan_code(src)
    hit = [f for f in rep.findings if f.rule == "code.rescore"]
    assert hit and hit[0].line == _line(src, "losses[ci] = score_chunk")
    assert _chain_lines(hit[0]) == [_line(src, "for pass_idx in range(passes)"), _line(src, "table.update_batch(val,"),
                                    _line(src, "losses[ci] = score_chunk"), _line(src, "return float(losses.sum())")]


def test_outer_loop_over_documents_with_a_per_document_sum_is_not_a_rescore():
    src = _SCORER + '''

def evaluate(model, val, n=8, size=1024):
    table = Table()
    total = 0.0
    for start in range(0, 4 * n * size, n * size):
        losses = np.zeros(n)
        for ci in range(n):
            losses[ci] = score_chunk(model, table, val, 1 + start + ci * size, 1 + start + (ci + 1) * size)
            table.update_batch(val, 1 + start + ci * size, 1 + start + (ci + 1) * size)
        total += float(losses.sum())
    return total


print(evaluate(torch.nn.Identity(), load_val()))
'''
    rep = scan_code(src)
    assert not [f for f in rep.findings if f.severity == "error"], [f.message for f in rep.findings]


def test_first_pass_score_taken_out_of_the_sum_and_replaced_is_a_rescore():
    src = _SCORER + '''

def evaluate(model, val, n=8, size=1024):
    table = Table()
    loss_sum = 0.0
    first = [0.0] * n
    for ci in range(n):
        first[ci] = score_chunk(model, table, val, 1 + ci * size, 1 + (ci + 1) * size)
        loss_sum += first[ci]
        table.update_batch(val, 1 + ci * size, 1 + (ci + 1) * size)
    for ci in range(n // 2):
        loss_sum -= first[ci]
        loss_sum += score_chunk(model, table, val, 1 + ci * size, 1 + (ci + 1) * size)
    return loss_sum / (n * size)


print(evaluate(torch.nn.Identity(), load_val()))
'''
    rep = scan_code(src)
    hit = [f for f in rep.findings if f.rule == "code.rescore"]
    assert hit and hit[0].line == _line(src, "loss_sum -= first[ci]")
    assert _chain_lines(hit[0])[-1] == _line(src, "loss_sum += score_chunk")


def test_appended_first_pass_and_a_rescore_accumulated_per_window():
    # Pass 1 appends one loss per chunk; pass 2 sums the windows of a chunk into a local and
    # writes it over the chunk's slot; the result sums a slice of the list.
    src = _SCORER + '''

def evaluate(model, val, n=8, size=1024, windows=4):
    table = Table()
    chunk_nll = []
    for ci in range(n):
        chunk_nll.append(score_chunk(model, table, val, 1 + ci * size, 1 + (ci + 1) * size))
        table.update_batch(val, 1 + ci * size, 1 + (ci + 1) * size)
    for ci in range(n):
        redo = 0.0
        for wi in range(windows):
            lo = 1 + ci * size + wi * (size // windows)
            redo += score_chunk(model, table, val, lo, lo + size // windows)
        chunk_nll[ci] = redo
    return float(sum(chunk_nll[:n])) / (n * size)


print(evaluate(torch.nn.Identity(), load_val()))
'''
    rep = scan_code(src)
    hit = [f for f in rep.findings if f.rule == "code.rescore"]
    assert hit and hit[0].line == _line(src, "chunk_nll[ci] = redo")
    assert _chain_lines(hit[0])[0] == _line(src, "chunk_nll.append(score_chunk")


def test_training_losses_kept_in_slots_are_not_scores():
    # Per-step training losses stored after their backward() and averaged for the log: bookkeeping.
    src = '''
import glob
import numpy as np
import torch
import torch.nn.functional as F


def load_val():
    return torch.from_numpy(np.fromfile(sorted(glob.glob("data/fineweb_val_*.bin"))[0], dtype="<u2").astype(np.int64))


def evaluate(model, val, size=1024):
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    loss_sum = 0.0
    steps = np.zeros(len(val) // size)
    for ci in range(len(val) // size - 1):
        x, y = val[ci * size:(ci + 1) * size], val[ci * size + 1:(ci + 1) * size + 1]
        with torch.no_grad():
            loss_sum += float(F.cross_entropy(model(x), y, reduction="sum"))
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        steps[ci] = loss.item()
    print("train loss", steps.mean())
    return loss_sum


print(evaluate(torch.nn.Embedding(1024, 1024), load_val()))
'''
    rep = scan_code(src)
    assert not [f for f in rep.findings if f.severity == "error"], [f.message for f in rep.findings]


def test_second_pass_in_a_helper_that_is_handed_the_slots():
    src = _SCORER + '''

def rescore(model, table, val, chunk_nll, n, size):
    for ci in range(n):
        chunk_nll[ci] = score_chunk(model, table, val, 1 + ci * size, 1 + (ci + 1) * size)


def evaluate(model, val, n=8, size=1024, twopass=True):
    table = Table()
    chunk_nll = np.zeros((n, 2))
    for ci in range(n):
        chunk_nll[ci, 0] = score_chunk(model, table, val, 1 + ci * size, 1 + (ci + 1) * size)
        table.update_batch(val, 1 + ci * size, 1 + (ci + 1) * size)
    if twopass:
        rescore(model, table, val, chunk_nll, n, size)
    return float(chunk_nll[:, 0].sum()) / (n * size)


print(evaluate(torch.nn.Identity(), load_val()))
'''
    rep = scan_code(src)
    hit = [f for f in rep.findings if f.rule == "code.rescore"]
    assert hit and hit[0].line == _line(src, "rescore(model, table, val, chunk_nll, n, size)", 1)


def test_temperature_chosen_by_loss_on_training_tokens_is_not_best_of_passes():
    # The 2026-03-24 ternary/binary records pick a softmax temperature by the eval loss on
    # training tokens; the same loop over validation tokens is best-of-passes.
    src = '''
import glob
import numpy as np
import torch
import torch.nn.functional as F


def tokens(pattern):
    return torch.from_numpy(np.fromfile(sorted(glob.glob(pattern))[0], dtype="<u2").astype(np.int64))


def eval_val(model, toks, temperature=1.0):
    loss_sum = 0.0
    for i in range(0, len(toks) - 1025, 1024):
        with torch.no_grad():
            loss_sum += float(F.cross_entropy(model(toks[i:i + 1024]) / temperature, toks[i + 1:i + 1025], reduction="sum"))
    return loss_sum


def find_temp(model, calib):
    best_t, best = 1.0, float("inf")
    for t in [0.9, 1.0, 1.1]:
        loss = eval_val(model, calib, temperature=t)
        if loss < best:
            best, best_t = loss, t
    return best_t


model = torch.nn.Embedding(1024, 1024)
t = find_temp(model, tokens("data/fineweb_train_*.bin")[:65536])
print(eval_val(model, tokens("data/fineweb_val_*.bin"), temperature=t))
'''
    assert not [f for f in scan_code(src).findings if f.severity == "error"]
    on_val = src.replace('find_temp(model, tokens("data/fineweb_train_*.bin")[:65536])',
                         'find_temp(model, tokens("data/fineweb_val_*.bin"))')
    assert [f.rule for f in scan_code(on_val).findings if f.severity == "error"] == ["code.rescore"]
