"""Regressions from running the static review over the real challenge scripts.

Each sample is a short shape written for this test (no challenge code): it reproduces how a real
script is laid out where the review first got it wrong. docs/compliance-validation.md lists the
scripts and results.
"""
from gepa.compliance import check_record
from gepa.compliance.review import scan_code, scan_sources
from gepa.compliance.pysyntax import downgrade_fstrings, parse
from tests.support.paths import REPO
import base64
import lzma

SAMPLES = REPO / "tests" / "gepa" / "compliance" / "samples"
LEGAL_ENTRY = (SAMPLES / "legal_score_first.py").read_text(encoding="utf-8")

# A switch read from the environment into a local inside main(), off by default; the eval it
# guards mixes a hashed n-gram count whose key includes the target (`tgt_np`).
LOCAL_FLAG_NGRAM = '''
import os
import numpy as np

PRIMES = np.array([36313, 27191, 51647], dtype=np.uint64)


def eval_cache(val_np, model_p):
    table = np.zeros(1 << 16, dtype=np.uint32)
    ctx_counts = np.zeros(1 << 16, dtype=np.uint32)
    nll_sum = 0.0
    for j in range(2, len(val_np)):
        ctx_hash = np.uint64(val_np[j - 1]) * PRIMES[0]
        tgt_np = np.uint64(val_np[j])
        full_key = int((ctx_hash ^ (tgt_np * PRIMES[1])) & np.uint64(0xFFFF))
        p = 0.8 * model_p[j] + 0.2 * table[full_key] / max(ctx_counts[int(ctx_hash) & 0xFFFF], 1)
        nll_sum += -np.log(p)
        table[full_key] += 1
    return nll_sum


def main():
    val_np = np.load("fineweb_val_000000.npy")
    model_p = np.full(len(val_np), 0.5)
    cache_on = bool(int(os.environ.get("CACHE_ON", "0")))
    if cache_on:
        print(eval_cache(val_np, model_p))


if __name__ == "__main__":
    main()
'''


def test_flag_local_to_main_keeps_the_guarded_eval_dead_by_default():
    rep = scan_code(LOCAL_FLAG_NGRAM)
    assert rep.verdict == "clean", [f.to_dict() for f in rep.findings]


def test_flag_local_to_main_follows_the_logged_setting_and_suffixed_target_names():
    rep = scan_sources({"train_gpt.py": LOCAL_FLAG_NGRAM}, settings=[{"cache_on": "1"}])
    # The hashed count ratio is banned for both reasons of X3: target in the key, not normalised.
    assert {f.rule for f in rep.findings} == {"code.target-in-key", "code.unnormalised"}
    key = next(f for f in rep.findings if f.rule == "code.target-in-key")
    assert "tgt_np" in LOCAL_FLAG_NGRAM.splitlines()[key.line - 1] or "full_key" in LOCAL_FLAG_NGRAM.splitlines()[key.line - 1]


def test_local_assigned_twice_stays_unknown_so_both_branches_are_reviewed():
    twice = LOCAL_FLAG_NGRAM.replace('    if cache_on:', '    if len(val_np) > 10:\n        cache_on = True\n    if cache_on:')
    assert {f.rule for f in scan_code(twice).findings} == {"code.target-in-key", "code.unnormalised"}


# Pre-quantisation adaptation on validation tokens that logs its running training loss: the
# `epoch_loss_sum +=` line is bookkeeping for the loss it just ran backward on, not a score.
PREQUANT_WITH_LOSS_LOG = '''
import torch


def adapt_before_quant(model, val_tokens, epochs=3):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for epoch in range(epochs):
        epoch_loss_sum = 0.0
        for i in range(0, val_tokens.numel() - 1025, 1024):
            seq = val_tokens[i:i + 1025].long()
            loss = model(seq[:-1][None], seq[1:][None])
            loss.backward()
            opt.step()
            opt.zero_grad()
            epoch_loss_sum += loss.item()
        print(epoch, epoch_loss_sum)


def eval_val(model, val_tokens):
    loss_sum = 0.0
    with torch.no_grad():
        for i in range(0, val_tokens.numel() - 1025, 1024):
            seq = val_tokens[i:i + 1025].long()
            loss_sum += model(seq[:-1][None], seq[1:][None]).item()
    return loss_sum


def main():
    model = torch.nn.Linear(2, 2)
    val_tokens = torch.load("fineweb_val_000000.bin")
    adapt_before_quant(model, val_tokens)
    torch.save(model.state_dict(), "final_model.pt")
    print(eval_val(model, val_tokens))


if __name__ == "__main__":
    main()
'''


def test_training_loss_log_inside_pre_quant_adaptation_is_not_a_score():
    rep = scan_code(PREQUANT_WITH_LOSS_LOG)
    assert [f.rule for f in rep.findings] == ["code.ttt-pre-eval"]
    assert "adapt_before_quant(model" in PREQUANT_WITH_LOSS_LOG.splitlines()[rep.findings[0].line - 1]


# Short documents are scored first without adaptation; longer ones then go through an adaptation
# loop. The review used to stop at the first scoring statement and never look inside the loop.
SHORT_DOCS_THEN_EPOCHS = '''
import torch


def eval_docs(model, opt, val_tokens, docs, epochs=3):
    loss_sum = 0.0
    with torch.no_grad():
        for start, n in docs:
            if n < 64:
                seq = val_tokens[start:start + n].long()
                loss_sum += model(seq[:-1][None], seq[1:][None]).item()
    for start, n in docs:
        for epoch in range(epochs):
            for c in range(0, n - 1, 32):
                seq = val_tokens[start + c:start + c + 33].long()
                per_tok = model(seq[:-1][None], seq[1:][None])
                if epoch == epochs - 1:
                    loss_sum += per_tok.sum().item()
                opt.zero_grad()
                per_tok.mean().backward()
                opt.step()
    return loss_sum


if __name__ == "__main__":
    print(eval_docs(torch.nn.Linear(2, 2), None, torch.load("fineweb_val_000000.bin"), []))
'''


def test_epoch_loop_after_an_unadapted_scoring_pass_is_still_checked():
    rep = scan_code(SHORT_DOCS_THEN_EPOCHS)
    assert [f.rule for f in rep.findings] == ["code.rescore"]
    assert "for epoch" in SHORT_DOCS_THEN_EPOCHS.splitlines()[rep.findings[0].line - 1]


def test_single_pass_score_first_after_an_unadapted_pass_stays_clean():
    single = SHORT_DOCS_THEN_EPOCHS.replace("        for epoch in range(epochs):\n", "        for _once in [0]:\n") \
        .replace("                if epoch == epochs - 1:\n                    loss_sum", "                if True:\n                    loss_sum")
    rep = scan_code(single)
    assert rep.verdict == "clean", [f.to_dict() for f in rep.findings]


# Python 3.12 (PEP 701) f-strings reuse the outer quote inside a replacement field. Records were
# run on 3.12; the review runs on 3.11, where such a script (or the payload inside a
# self-extracting wrapper) used to be a parse error / an opaque warning, i.e. never reviewed.
PEP701_PRE_EVAL = '''
import torch


def log_cats(cats):
    for k in sorted(cats):
        print(f"  {k}: {", ".join(sorted(cats[k]))}")


def ttt_adapt(model, val_tokens):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    for i in range(0, val_tokens.numel() - 1025, 1024):
        seq = val_tokens[i:i + 1025].long()
        model(seq[:-1][None], seq[1:][None]).backward()
        opt.step()


def eval_val(model, val_tokens):
    loss_sum = 0.0
    with torch.no_grad():
        for i in range(0, val_tokens.numel() - 1025, 1024):
            seq = val_tokens[i:i + 1025].long()
            loss_sum += model(seq[:-1][None], seq[1:][None]).item()
    return loss_sum


if __name__ == "__main__":
    m, v = torch.nn.Linear(2, 2), torch.load("fineweb_val_000000.bin")
    log_cats({"a": {"x", "y"}})
    ttt_adapt(m, v)
    print(f"{"val"}: {eval_val(m, v)}")
'''


def test_python312_fstrings_are_reviewed_not_rejected():
    rep = scan_code(PEP701_PRE_EVAL)
    assert not rep.parse_errors
    assert {f.rule for f in rep.findings} == {"code.ttt-pre-eval"}
    assert "ttt_adapt(m, v)" in PEP701_PRE_EVAL.splitlines()[rep.findings[0].line - 1]
    fixed, _ = downgrade_fstrings(PEP701_PRE_EVAL)
    assert len(fixed.splitlines()) == len(PEP701_PRE_EVAL.splitlines())
    parse(PEP701_PRE_EVAL)
    plain = "x = f'{a!r:>{w}}' + 'b' # f\"{\"\"}\"\n"
    assert downgrade_fstrings(plain) == (plain, {})


def test_python312_payload_inside_a_wrapper_is_decoded():
    rep = scan_code(_wrap(PEP701_PRE_EVAL))
    assert rep.layers and "code.opaque" not in {f.rule for f in rep.findings}
    assert rep.verdict == "flagged"


def _wrap(src: str) -> str:
    raw = lzma.compress(src.encode(), format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
    return ('import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("%s"),format=L.FORMAT_RAW,'
            'filters=[{"id":L.FILTER_LZMA2}]))\n' % base64.b85encode(raw).decode())


# Older records do not dump their hyperparameters into the log, so an eval path behind a flag
# that is off by default looked dead even though the log shows it ran (`legal_ttt_exact ...`).
FLAG_OFF_BUT_LOGGED = '''
import os
import torch


class Hyperparameters:
    ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "0")))


def eval_adapt(model, opt, val_tokens):
    loss_sum = 0.0
    for i in range(0, val_tokens.numel() - 1025, 1024):
        seq = val_tokens[i:i + 1025].long()
        model(seq[:-1][None], seq[1:][None]).backward()
        opt.step()
        with torch.no_grad():
            loss_sum += model(seq[:-1][None], seq[1:][None]).item()
    return loss_sum


def main():
    args = Hyperparameters()
    m, v = torch.nn.Linear(2, 2), torch.load("fineweb_val_000000.bin")
    if args.ttt_enabled:
        loss = eval_adapt(m, torch.optim.SGD(m.parameters(), lr=0.1), v)
        print(f"adapted_exact val_loss:{loss:.8f} val_bpb:{loss:.8f}")


if __name__ == "__main__":
    main()
'''


def test_branch_whose_output_is_in_the_log_is_reviewed():
    assert scan_sources({"train_gpt.py": FLAG_OFF_BUT_LOGGED}).verdict == "clean"
    rep = scan_sources({"train_gpt.py": FLAG_OFF_BUT_LOGGED}, printed={"adapted_exact"})
    assert {f.rule for f in rep.findings} == {"code.ttt-pre-eval"}
    # A label that the code never prints (or a bare step counter) changes nothing.
    assert scan_sources({"train_gpt.py": FLAG_OFF_BUT_LOGGED}, printed={"other_metric", "100/2000"}).verdict == "clean"


# A softmax temperature picked by the record's own scorer, `eval_val`, run once per candidate and
# keeping the best; what decides legality is which tokens the search scores (the 2026-03-24
# ternary and binary records pass a slice of the training stream).
TEMPERATURE_SEARCH = '''
import os
import torch


def eval_val(model, val_tokens, temperature=1.0):
    loss_sum = 0.0
    with torch.no_grad():
        for i in range(0, val_tokens.numel() - 1, 1024):
            x, y = val_tokens[i:i + 1024], val_tokens[i + 1:i + 1025]
            loss_sum += torch.nn.functional.cross_entropy(model(x) / temperature, y).item()
    return loss_sum


def find_temp(model, calibration_tokens):
    best_t, best_loss = 1.0, float("inf")
    for t in [0.9, 0.95, 1.0, 1.05]:
        loss = eval_val(model, calibration_tokens, temperature=t)
        if loss < best_loss:
            best_loss = loss
            best_t = t
    return best_t


def main():
    model = torch.nn.Linear(8, 8)
    train_tokens = torch.load("fineweb_train_000000.pt")
    val_tokens = torch.load("fineweb_val_000000.pt")
    t = find_temp(model, CALIBRATION)
    print(eval_val(model, val_tokens, temperature=t))


if __name__ == "__main__":
    main()
'''


def test_temperature_search_on_training_tokens_is_not_a_best_of_validation_passes():
    src = TEMPERATURE_SEARCH.replace("CALIBRATION", "train_tokens[:65536]")
    rep = scan_code(src)
    assert "code.rescore" not in {f.rule for f in rep.findings}, [f.to_dict() for f in rep.findings]


def test_temperature_search_on_validation_tokens_keeps_the_best_pass():
    src = TEMPERATURE_SEARCH.replace("CALIBRATION", "val_tokens[:65536]")
    hits = [f for f in scan_code(src).findings if f.rule == "code.rescore"]
    assert hits and "if loss < best_loss" in src.splitlines()[hits[0].line - 1]


def _folder_without_train_gpt(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return check_record(tmp_path)


def test_a_folder_of_several_scripts_and_no_train_gpt_reviews_each_as_a_program(tmp_path):
    # The HNet study ships train_gpt_hnet.py and train_gpt_hnet_byte.py and no train_gpt.py:
    # nothing at all used to be reviewed (every code rule skipped).
    legal = (SAMPLES / "legal_score_first.py").read_text(encoding="utf-8")
    v = _folder_without_train_gpt(tmp_path, {"train_a.py": legal, "train_b.py": legal})
    status = {r.rule: r.status for r in v.results}
    assert status["code.parse"] == "pass"
    assert all(status[r] == "pass" for r in status if r.startswith("code.") and r != "code.parse"), status


def test_the_second_script_of_such_a_folder_is_not_a_standalone_helper(tmp_path):
    # Picking the first script as the run would demote the other's findings to warnings: an
    # illegal script shipped next to a legal one must still fail.
    legal = (SAMPLES / "legal_score_first.py").read_text(encoding="utf-8")
    slot = (SAMPLES / "illegal_slot.py").read_text(encoding="utf-8")
    v = _folder_without_train_gpt(tmp_path, {"train_a.py": legal, "train_b.py": slot})
    slot_rule = next(r for r in v.results if r.rule == "code.slot")
    assert slot_rule.status == "fail" and any(e.file == "train_b.py" for e in slot_rule.evidence)


# The 2026-03-26 JEPA record: a temperature search whose scorer parameter is *named* val_tokens but
# is handed training tokens at its only call site; a linear probe trained on frozen hidden states
# of validation text for a diagnostic; and a name (`diag`) reused after the training loop for
# those diagnostics, which a flow-insensitive taint would carry back into the loop.
JEPA_SHAPES = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Loader:
    def __init__(self, pattern):
        self.stream = torch.load(pattern)


def eval_val(model, val_tokens, temperature=1.0):
    loss_sum = 0.0
    with torch.no_grad():
        for i in range(0, val_tokens.numel() - 1, 1024):
            loss_sum += F.cross_entropy(model(val_tokens[i:i + 1024]) / temperature, val_tokens[i + 1:i + 1025]).item()
    return loss_sum


def find_best_temperature(model, val_tokens):
    best_t, best_loss = 1.0, float("inf")
    for t in [0.9, 1.0, 1.1]:
        loss = eval_val(model, val_tokens, temperature=t)
        if loss < best_loss:
            best_loss = loss
            best_t = t
    return best_t


def diagnostics(model, val_tokens):
    with torch.no_grad():
        h = model.hidden(val_tokens[:-1])
    probe = nn.Linear(h.size(-1), 1024)
    opt = torch.optim.Adam(probe.parameters(), lr=1e-3)
    for _ in range(50):
        loss = F.cross_entropy(probe(h), val_tokens[1:])
        opt.zero_grad(); loss.backward(); opt.step()
    return {"probe_loss": loss.detach(), "h_norm": h.norm()}


def main():
    model = torch.nn.Linear(8, 8)
    train_loader = Loader("fineweb_train_*.bin")
    val_tokens = torch.load("fineweb_val_000000.bin")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    acc = {}
    for step in range(100):
        x = train_loader.stream[step:step + 1024]
        loss, diag = model(x), {"norm": x.float().norm()}
        loss.backward()
        opt.step()
        for k, v in diag.items():
            if k not in acc:
                acc[k] = v
            else:
                acc[k] += v
    diag = diagnostics(model, val_tokens)
    calib = train_loader.stream[:65536]
    calib = calib[:65000]
    t = find_best_temperature(model, calib)
    print(diag, eval_val(model, val_tokens, temperature=t))


if __name__ == "__main__":
    main()
'''


def test_jepa_record_shapes_are_not_flagged():
    rep = scan_code(JEPA_SHAPES)
    errors = [f.to_dict() for f in rep.findings if f.severity == "error"]
    assert not errors, errors
    # The probe is trained on validation hidden states: reported, as a throwaway warm-up is.
    assert "code.val-warmup" in {f.rule for f in rep.findings}


def test_the_same_temperature_search_fed_validation_tokens_is_best_of_passes():
    src = JEPA_SHAPES.replace("t = find_best_temperature(model, calib)", "t = find_best_temperature(model, val_tokens)")
    assert "code.rescore" in {f.rule for f in scan_code(src).findings if f.severity == "error"}


def test_a_table_keyed_by_validation_data_inside_the_loop_is_still_a_cache():
    # Bound before the loop, the reused name does carry validation data into it.
    src = JEPA_SHAPES.replace("    acc = {}\n", "    acc = {}\n    diag = diagnostics(model, val_tokens)\n") \
        .replace("        loss, diag = model(x), {\"norm\": x.float().norm()}\n", "        loss = model(x)\n") \
        .replace("    diag = diagnostics(model, val_tokens)\n    calib", "    calib")
    assert "code.val-cache" in {f.rule for f in scan_code(src).findings}


# A SLOT eval laid out like a ruled-illegal PR (X8): the switch is read through an alias of
# os.environ.get, the eval function is handed to a timing wrapper instead of being called, and the
# score is added up in a helper through a local slice of the per-token losses.
SLOT_BEHIND_WRAPPER = '''
import os
import time
import torch
import torch.nn.functional as F
_E = os.environ.get


class Hyperparameters:
    slot_enabled = bool(int(_E("SLOT_ENABLED", "0")))
    slot_steps = int(_E("SLOT_STEPS", 8))


def add_scores(nll, ls, tc):
    sn = nll[:, 64:].to(torch.float64)
    ls += sn.sum()
    tc += float(sn.numel())


def eval_val_slot(h, vd, bm):
    ls = torch.zeros((), dtype=torch.float64)
    tc = torch.zeros((), dtype=torch.float64)
    for i in range(0, vd.numel() - 1025, 512):
        xb, yb = vd[i:i + 1024][None], vd[i + 1:i + 1025][None]
        with torch.no_grad():
            hid = bm.backbone(xb).detach()
        delta = torch.zeros(1, 1, hid.size(-1), requires_grad=True)
        opt = torch.optim.AdamW([delta], lr=0.005)
        for _ in range(h.slot_steps):
            opt.zero_grad()
            F.cross_entropy(bm.head(hid + delta).flatten(0, 1), yb.flatten()).backward()
            opt.step()
        with torch.no_grad():
            nll = F.cross_entropy(bm.head(hid + delta).flatten(0, 1), yb.flatten(), reduction="none").view(1, -1)
            add_scores(nll, ls, tc)
    return ls / tc


def timed_eval(label, fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    print(label, out, time.perf_counter() - t0)


def main():
    h = Hyperparameters()
    vd = torch.load("fineweb_val_000000.bin")
    bm = torch.nn.Linear(8, 8)
    if h.slot_enabled:
        timed_eval("final_slot", eval_val_slot, h, vd, bm)


if __name__ == "__main__":
    main()
'''


def test_slot_handed_to_a_timing_wrapper_is_found_when_its_switch_is_on():
    rep = scan_sources({"train_gpt.py": SLOT_BEHIND_WRAPPER}, settings=[{"SLOT_ENABLED": "1"}])
    hits = [f for f in rep.findings if f.rule == "code.slot"]
    assert hits and "opt.step()" in SLOT_BEHIND_WRAPPER.splitlines()[hits[0].line - 1], [f.to_dict() for f in rep.findings]


def test_slot_switch_read_through_an_env_alias_is_off_by_default():
    assert scan_code(SLOT_BEHIND_WRAPPER).verdict == "clean"


# A data-preparation script shipped with a CaseOps record: it tokenizes documents and writes the
# validation split itself (`fineweb_val_000000.bin`, named by an f-string). Writing the split is
# not storing validation content where the submission reads it back; the same buffer written to a
# file of the submission's own is.
PREP_SCRIPT = '''
import json
import pathlib
import numpy as np


def write_shard(out_path, arr):
    header = np.zeros(256, dtype=np.int32)
    header[2] = int(arr.size)
    with out_path.open("wb") as fh:
        fh.write(header.tobytes())
        fh.write(arr.tobytes())


def main():
    out = pathlib.Path("data")
    val_buf_tokens = []
    for i, line in enumerate(open("docs.jsonl")):
        val_buf_tokens.extend(ord(c) for c in json.loads(line)["text"])
    write_shard(out / f"fineweb_val_{0:06d}.bin", np.array(val_buf_tokens, dtype=np.uint16))


if __name__ == "__main__":
    main()
'''


def test_a_script_writing_the_validation_split_is_not_a_paid_prefix():
    rep = scan_sources({"train_gpt.py": LEGAL_ENTRY, "prepare_data.py": PREP_SCRIPT})
    assert "code.paid-prefix" not in {f.rule for f in rep.findings}, [f.to_dict() for f in rep.findings]


def test_the_same_buffer_written_into_a_shipped_file_is_a_paid_prefix():
    src = PREP_SCRIPT.replace('out / f"fineweb_val_{0:06d}.bin"', 'pathlib.Path("prefix.bin")')
    rep = scan_sources({"train_gpt.py": LEGAL_ENTRY, "prepare_data.py": src})
    assert "code.paid-prefix" in {f.rule for f in rep.findings if f.severity == "error"}


def test_a_helper_module_reviewed_on_its_own_has_every_function_reached():
    # Ruled-illegal PRs ship the mechanism in a module of definitions only (the #1420 word-start
    # expert in `online_best_agree_eval.py`); how it is called is not in the file, so nothing in
    # it used to be reachable and the module passed clean.
    gate = (SAMPLES / "illegal_target_gate.py").read_text(encoding="utf-8")
    library = gate[: gate.index("print(eval_tilt(")]
    assert "code.target-in-key" in {f.rule for f in scan_code(gate).findings}
    assert "code.target-in-key" in {f.rule for f in scan_code(library).findings}


def test_a_script_that_runs_something_is_not_taken_for_a_library():
    # The same definitions under a main that never calls them stay unreached (dead code).
    gate = (SAMPLES / "illegal_target_gate.py").read_text(encoding="utf-8")
    script = gate[: gate.index("print(eval_tilt(")] + "\n\ndef main():\n    print('nothing')\n\n\nmain()\n"
    assert "code.target-in-key" not in {f.rule for f in scan_code(script).findings}


# PR #776 (ruled illegal): after the training loop, main() itself runs epochs of AdamW on the
# validation tokens and then scores them. The training loop's `train_loss += loss.detach()` reuses
# the name `loss` that the later TTT loop binds to validation losses; read flow-insensitively it
# looked like an earlier validation score, and the pre-eval TTT was reported as a rescore.
INLINE_PRE_EVAL_TTT = '''
import torch
import torch.nn.functional as F


def main():
    model = torch.nn.Linear(8, 8)
    train = torch.load("fineweb_train_000000.bin")
    val_tokens = torch.load("fineweb_val_000000.bin")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train_loss = torch.zeros(())
    for step in range(100):
        x, y = train[step:step + 64], train[step + 1:step + 65]
        loss = F.cross_entropy(model(x), y)
        train_loss += loss.detach()
        loss.backward()
        opt.step()
    ttt_opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    for ep in range(30):
        for bs in range(0, val_tokens.numel() - 65, 64):
            local = val_tokens[bs:bs + 65]
            loss = F.cross_entropy(model(local[:-1]), local[1:])
            ttt_opt.zero_grad()
            loss.backward()
            ttt_opt.step()
    nll_sum = 0.0
    with torch.no_grad():
        for i in range(0, val_tokens.numel() - 65, 64):
            nll_sum += F.cross_entropy(model(val_tokens[i:i + 64]), val_tokens[i + 1:i + 65], reduction="sum").item()
    print(train_loss, nll_sum)


if __name__ == "__main__":
    main()
'''


def test_epochs_on_validation_tokens_inline_in_main_are_pre_eval_ttt():
    rules = {f.rule for f in scan_code(INLINE_PRE_EVAL_TTT).findings if f.severity == "error"}
    assert "code.ttt-pre-eval" in rules and "code.rescore" not in rules, rules
