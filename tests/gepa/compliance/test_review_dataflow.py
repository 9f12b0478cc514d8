"""The static review follows validation data, not names: one short sample per mechanism.

Every sample here was written for this test to reproduce one mechanism seen in real PRs (the
real scripts stay outside the repository). Names are deliberately unusual (`all_tokens`, `nxt`,
`_mix`) so that only data flow can connect them to the validation files.
"""

from gepa.compliance.review import scan_bundle, scan_code, scan_sources
import base64

HEAD = '''
import glob
import os
import numpy as np
import torch
import torch.nn.functional as F


def load_data_shard(path):
    return torch.from_numpy(np.fromfile(path, dtype=np.uint16).astype(np.int64))


def stream(pattern):
    return torch.cat([load_data_shard(p) for p in sorted(glob.glob(pattern))])


def evaluate(model, toks):
    loss_sum = 0.0
    with torch.no_grad():
        for i in range(0, toks.numel() - 65, 64):
            chunk = toks[i:i + 65]
            loss_sum += F.cross_entropy(model(chunk[:-1]), chunk[1:], reduction="sum").item()
    return loss_sum
'''


def rules(src: str, **kw) -> set[str]:
    return {f.rule for f in scan_code(src, **kw).findings}


def test_renamed_val_stream_trained_on_before_scoring():
    src = HEAD + '''
def adapt(model, opt, data):
    for _ in range(3):
        for i in range(0, data.numel() - 65, 64):
            piece = data[i:i + 65]
            F.cross_entropy(model(piece[:-1]), piece[1:]).backward()
            opt.step()


def main():
    all_tokens = stream(os.path.join("data", "fineweb_val_*.bin"))
    model = torch.nn.Linear(8, 8)
    adapt(model, torch.optim.AdamW(model.parameters()), all_tokens)
    print(evaluate(model, all_tokens))


if __name__ == "__main__":
    main()
'''
    rep = scan_code(src)
    f = next(x for x in rep.findings if x.rule == "code.ttt-pre-eval")
    assert "adapt(model" in src.splitlines()[f.line - 1]
    assert f.chain and "fineweb_val_" in f.chain[0]  # the chain starts at the val glob
    # The same code on training shards is ordinary training.
    assert "code.ttt-pre-eval" not in rules(src.replace("fineweb_val_", "fineweb_train_"))


def test_best_of_several_scoring_passes():
    src = HEAD + '''
def main():
    held = stream("data/fineweb_val_*.bin")
    model = torch.nn.Linear(8, 8)
    best = float("inf")
    for _ in range(4):
        r = evaluate(model, held)
        best = min(best, r)
    print(best)


main()
'''
    assert "code.rescore" in rules(src)


def test_per_token_minimum_over_two_passes():
    src = HEAD + '''
def per_token(model, toks):
    with torch.no_grad():
        return F.cross_entropy(model(toks[:-1]), toks[1:], reduction="none")


def main():
    held = stream("data/fineweb_val_*.bin")
    model = torch.nn.Linear(8, 8)
    nll_a = per_token(model, held)
    nll_b = per_token(torch.nn.Linear(8, 8), held)
    loss_sum = torch.minimum(nll_a, nll_b).sum()
    print(loss_sum)


main()
'''
    rep = scan_code(src)
    hit = [f for f in rep.findings if f.rule == "code.rescore"]
    assert hit and "torch.minimum" in src.splitlines()[hit[0].line - 1]


def test_two_pass_ngram_counts_built_over_the_whole_val_stream():
    src = HEAD + '''
def build(arr):
    tab = np.zeros(1 << 16, dtype=np.int64)
    key = (arr[:-1] * 1000003 + arr[1:]) & 0xFFFF
    np.add.at(tab, key, 1)
    return tab


def rescore(model, arr, tab):
    loss_sum = 0.0
    for i in range(len(arr) - 1):
        loss_sum += -np.log((tab[(arr[i] * 1000003) & 0xFFFF] + 1) / 2.0)
    return loss_sum


def main():
    arr = np.concatenate([np.fromfile(p, dtype=np.uint16) for p in glob.glob("data/fineweb_val_*.bin")])
    tab = build(arr)
    print(rescore(None, arr, tab))


main()
'''
    rep = scan_code(src)
    hit = [f for f in rep.findings if f.rule == "code.val-cache"]
    assert hit and "np.add.at" in src.splitlines()[hit[0].line - 1]
    # An online cache updated inside the scoring loop after each score is legal.
    online = src.replace("    tab = build(arr)\n", "    tab = np.zeros(1 << 16)\n").replace(
        "        loss_sum += -np.log((tab[(arr[i] * 1000003) & 0xFFFF] + 1) / 2.0)\n",
        "        loss_sum += -np.log((tab[(arr[i] * 1000003) & 0xFFFF] + 1) / 2.0)\n"
        "        np.add.at(tab, (arr[i] * 1000003) & 0xFFFF, 1)\n")
    assert "code.val-cache" not in rules(online)


def test_target_hashed_in_a_helper_with_an_unusual_name():
    src = HEAD + '''
def _mix(a, b):
    return (a * 2654435761) ^ b


def score(model, seq, memo):
    loss_sum = 0.0
    logits = model(seq[:-1])
    nxt = seq[1:]
    loss_sum += F.cross_entropy(logits, nxt, reduction="sum").item()
    for i in range(len(nxt)):
        h = _mix(int(seq[i]), int(nxt[i]))
        loss_sum -= memo[h & 1023]
    return loss_sum


def main():
    seq = stream("data/fineweb_val_*.bin")
    print(score(torch.nn.Linear(8, 8), seq, np.zeros(1024)))


main()
'''
    assert "code.target-in-key" in rules(src)


def test_target_inside_a_dict_lookup():
    src = HEAD + '''
def score(model, seq, table):
    loss_sum = 0.0
    logits = model(seq[:-1])
    gold = seq[1:]
    loss_sum += F.cross_entropy(logits, gold, reduction="sum").item()
    for i in range(len(gold)):
        loss_sum -= table.get((int(seq[i]), int(gold[i])), 0.0)
    return loss_sum


def main():
    seq = stream("data/fineweb_val_*.bin")
    print(score(torch.nn.Linear(8, 8), seq, {}))


main()
'''
    assert "code.target-in-key" in rules(src)


def test_mixture_not_normalised_over_the_vocabulary():
    src = HEAD + '''
def score(model, seq, counts, ctx_counts):
    loss_sum = 0.0
    probs = torch.softmax(model(seq[:-1]), -1)
    tgt_ids = seq[1:]
    p_model = probs.gather(-1, tgt_ids[:, None]).squeeze(-1)
    ctx = seq[:-1]
    p_ng = counts[ctx, tgt_ids] / (ctx_counts[ctx] + 1.0)
    loss_sum += -torch.log(0.8 * p_model + 0.2 * p_ng).sum()
    return loss_sum


def main():
    seq = stream("data/fineweb_val_*.bin")
    print(score(torch.nn.Linear(8, 8), seq, torch.zeros(8, 8), torch.zeros(8)))


main()
'''
    assert "code.unnormalised" in rules(src)


def test_target_dependent_gate():
    src = HEAD + '''
def score(model, seq, starts_word):
    loss_sum = 0.0
    for i in range(len(seq) - 1):
        bonus = 0.5 if starts_word[seq[i + 1]] else 0.0
        loss_sum += float(model(seq[i:i + 1]).sum()) - bonus
    return loss_sum


def main():
    seq = stream("data/fineweb_val_*.bin")
    print(score(torch.nn.Linear(8, 8), seq, np.zeros(8, dtype=bool)))


main()
'''
    assert "code.target-in-key" in rules(src)


def test_paid_prefix_stores_val_tokens_with_the_model():
    src = HEAD + '''
def main():
    held = stream("data/fineweb_val_*.bin")
    model = torch.nn.Linear(8, 8)
    torch.save({"model": model.state_dict(), "memo": held[:100000].clone()}, "final_model.pt")
    print(evaluate(model, held))


main()
'''
    rep = scan_code(src)
    hit = [f for f in rep.findings if f.rule == "code.paid-prefix"]
    assert hit and "torch.save" in src.splitlines()[hit[0].line - 1]
    assert "code.paid-prefix" not in rules(src.replace('"memo": held[:100000].clone()', '"step": 1'))


def test_gptq_calibrated_on_val_data():
    src = HEAD + '''
def collect_hessians(model, batches):
    return [b.float().T @ b.float() for b in batches]


def main():
    eval_stream = stream("data/fineweb_val_*.bin")
    model = torch.nn.Linear(8, 8)
    h = collect_hessians(model, eval_stream.view(-1, 8))
    print(evaluate(model, eval_stream), len(h))


main()
'''
    assert "code.val-in-training" in rules(src)


def test_slot_behind_getattr_default_off_is_not_flagged_and_on_is():
    src = HEAD + '''
class Hyperparameters:
    lr = 0.1


def slot_eval(model, seq):
    loss_sum = 0.0
    for i in range(0, seq.numel() - 65, 64):
        x, y = seq[i:i + 64], seq[i + 1:i + 65]
        delta = torch.zeros(8, requires_grad=True)
        opt = torch.optim.AdamW([delta], lr=0.01)
        F.cross_entropy(model(x) + delta, y).backward()
        opt.step()
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x) + delta, y, reduction="sum").item()
    return loss_sum


def main():
    args = Hyperparameters()
    seq = stream("data/fineweb_val_*.bin")
    model = torch.nn.Linear(8, 8)
    if getattr(args, "slot_enabled", False):
        print(slot_eval(model, seq))
    print(evaluate(model, seq))


main()
'''
    assert scan_code(src).verdict == "clean"
    assert rules(src.replace('getattr(args, "slot_enabled", False)', 'getattr(args, "slot_enabled", True)')) == {"code.slot"}
    # A logged configuration that turns it on makes it reachable.
    rep = scan_sources({"train_gpt.py": src}, settings=[{"slot_enabled": "True"}])
    assert {f.rule for f in rep.findings} == {"code.slot"}


def test_throwaway_lora_warmup_on_val_is_a_warning_only():
    src = HEAD + '''
import copy


def compile_warmup(model, seq):
    adapter = copy.deepcopy(model)
    opt = torch.optim.SGD(adapter.parameters(), lr=0.0)
    for i in range(0, 256, 64):
        piece = seq[i:i + 65]
        F.cross_entropy(adapter(piece[:-1]), piece[1:]).backward()
        opt.step()
    del adapter


def main():
    seq = stream("data/fineweb_val_*.bin")
    model = torch.nn.Linear(8, 8)
    compile_warmup(model, seq)
    print(evaluate(model, seq))


main()
'''
    rep = scan_code(src)
    assert {f.rule for f in rep.findings} == {"code.val-warmup"} and rep.verdict == "clean"
    # Writing the adapted copy back into the model is pre-eval training.
    back = src.replace("    del adapter\n", "    model.load_state_dict(adapter.state_dict())\n")
    assert "code.ttt-pre-eval" in rules(back)


def test_score_first_ttt_on_a_renamed_stream_stays_clean():
    src = HEAD + '''
def ttt(model, opt, data):
    loss_sum = 0.0
    for i in range(0, data.numel() - 65, 64):
        piece = data[i:i + 65]
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(piece[:-1]), piece[1:], reduction="sum").item()
        F.cross_entropy(model(piece[:-1]), piece[1:]).backward()
        opt.step()
    return loss_sum


def main():
    everything = stream("data/fineweb_val_*.bin")
    model = torch.nn.Linear(8, 8)
    print(ttt(model, torch.optim.SGD(model.parameters(), lr=0.1), everything))


main()
'''
    assert scan_code(src).verdict == "clean"


def test_calibration_after_the_wallclock_cap_without_a_reserve_warns():
    src = HEAD + '''
MAX_WALLCLOCK_SECONDS = 600.0


def gptq_calibrate(model, train_batches):
    return [b.float().T @ b.float() for b in train_batches]


def main():
    train = stream("data/fineweb_train_*.bin")
    model = torch.nn.Linear(8, 8)
    h = gptq_calibrate(model, train.view(-1, 8))
    print(evaluate(model, stream("data/fineweb_val_*.bin")), len(h))


main()
'''
    rep = scan_code(src)
    assert {f.rule for f in rep.findings} == {"code.calib-budget"} and rep.verdict == "clean"
    reserved = src.replace("MAX_WALLCLOCK_SECONDS = 600.0", "MAX_WALLCLOCK_SECONDS = 600.0\nGPTQ_RESERVE_SECONDS = 12.0")
    assert rules(reserved) == set()


# ---------------------------------------------------------------- wrappers, encodings, bundles

NET_UTF7 = ('# -*- coding: utf-7 -*-\n'
            'import torch\n'
            '# harmless comment +AAo-import requests+ADs- requests.get(+ACI-https://example.com/w+ACI-)\n'
            'print(torch.zeros(1))\n')


def test_utf7_cookie_hiding_a_download_is_caught():
    files = {"train_gpt.py": NET_UTF7.encode("ascii")}
    rep = scan_bundle(files)
    got = {f.rule for f in rep.findings}
    assert {"code.encoding", "code.network"} <= got and rep.flagged
    # Read as UTF-8 the same bytes look like a comment.
    assert scan_code(NET_UTF7).verdict == "clean"


def test_harmless_latin1_cookie_on_ascii_text_is_not_a_finding():
    src = "# -*- coding: latin-1 -*-\nprint(1)\n"
    assert scan_bundle({"train_gpt.py": src.encode()}).findings == []


def test_unknown_codec_cookie_is_a_finding():
    rep = scan_bundle({"train_gpt.py": b"# coding: no-such-codec\nprint(1)\n"})
    assert [f.rule for f in rep.findings] == ["code.encoding"]


def test_bidi_controls_are_flagged():
    src = 'access = "user"\nif access != "user\u202e \u2066# admin\u2069 \u2066":\n    print(1)\n'
    rep = scan_bundle({"train_gpt.py": src.encode("utf-8")})
    hit = [f for f in rep.findings if f.rule == "code.bidi"]
    assert hit and hit[0].line == 2 and rep.flagged


def test_helper_module_network_call_and_code_bytes():
    main = b"import helper\nhelper.fetch()\nprint('ok')\n"
    helper = b"import urllib.request\n\ndef fetch():\n    return urllib.request.urlopen('https://example.com').read()\n"
    rep = scan_bundle({"train_gpt.py": main, "helper.py": helper, "README.md": b"# x\n" * 100})
    net = [f for f in rep.findings if f.rule == "code.network"]
    assert net and {f.file for f in net} == {"helper.py"}
    assert rep.code_bytes == len(main) + len(helper) and set(rep.code_files) == {"train_gpt.py", "helper.py"}


def test_unimported_shipped_module_is_still_reviewed():
    files = {"train_gpt.py": b"print(1)\n", "tools/prep.py": b"import requests\nrequests.get('x')\n"}
    rep = scan_bundle(files)
    # A download script the run never uses (data preparation) is reported, as a warning.
    assert [(f.rule, f.file, f.severity) for f in rep.findings] == [("code.network", "tools/prep.py", "warning")]
    assert rep.verdict == "clean"
    # Once the entry runs it (`python tools/prep.py`, or an import), the finding is an error.
    files["train_gpt.py"] = b"import subprocess, sys\nsubprocess.run([sys.executable, 'tools/prep.py'])\n"
    assert scan_bundle(files).flagged


def test_native_sources_and_runtime_compilation_go_to_a_human():
    main = (b"import ctypes, subprocess\n"
            b"subprocess.run(['gcc', '-O3', '-shared', 'gate.c', '-o', 'gate.so'])\n"
            b"lib = ctypes.CDLL('./gate.so')\n")
    rep = scan_bundle({"train_gpt.py": main, "gate.c": b"int gate(int tgt) { return tgt == 32; }\n"})
    native = {(f.file, f.line) for f in rep.findings if f.rule == "code.native"}
    assert ("gate.c", 1) in native and ("train_gpt.py", 2) in native and ("train_gpt.py", 3) in native
    assert rep.verdict == "needs-review" and rep.needs_review and not rep.flagged
    assert rep.code_bytes == len(main) + len(b"int gate(int tgt) { return tgt == 32; }\n")


def test_exec_open_stub_follows_the_sibling():
    stub = b"import os\nexec(open(os.path.join(os.path.dirname(__file__), 'train_gpt_impl.py')).read())\n"
    impl = (HEAD + '''
def main():
    v = stream("data/fineweb_val_*.bin")
    m = torch.nn.Linear(8, 8)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for i in range(0, 640, 64):
        F.cross_entropy(m(v[i:i + 64]), v[i + 1:i + 65]).backward()
        opt.step()
    print(evaluate(m, v))


if __name__ == "__main__":
    main()
''').encode()
    rep = scan_bundle({"train_gpt.py": stub, "train_gpt_impl.py": impl})
    assert rep.entry == "train_gpt_impl.py" and "code.opaque" not in {f.rule for f in rep.findings}
    assert rep.layers["train_gpt.py"] == ["file:train_gpt_impl.py"]
    assert rep.flagged and {f.file for f in rep.findings} == {"train_gpt_impl.py"}
    # A stub that execs a file the submission does not ship is not reviewable.
    alone = scan_bundle({"train_gpt.py": stub})
    assert alone.verdict == "needs-review"


def test_exec_compile_with_file_name_is_decoded():
    inner = b"import requests\nrequests.get('https://example.com')\n"
    src = ("import base64\nS = base64.b64decode(%r)\nexec(compile(S, __file__, 'exec'))\n" % base64.b64encode(inner)).encode()
    rep = scan_bundle({"train_gpt.py": src})
    assert "code.network" in {f.rule for f in rep.findings}


def test_python312_fstring_with_else_quote_is_parsed_and_reviewed():
    src = HEAD + '''
def main():
    v = stream("data/fineweb_val_*.bin")
    m = torch.nn.Linear(8, 8)
    tag = f"{len(v) if v is not None else"none"}"
    torch.save({"tokens": v[:4096]}, "final_model.pt")
    print(f"{tag!r:>{10}} {", ".join(["a", "b"])} {f"{"deep"}"}", evaluate(m, v))


main()
'''
    rep = scan_code(src)
    assert not rep.parse_errors
    assert {f.rule for f in rep.findings} == {"code.paid-prefix"}


def test_hint_for_position_i_gated_on_the_token_at_i():
    src = HEAD + '''
def hints(seq, word_start):
    out = np.zeros(len(seq), dtype=np.int64)
    hist, best = [0], {}
    for i, cur in enumerate(seq):
        starts = bool(word_start[int(cur)])
        if starts:
            out[i] = best.get(hist[-1], 0)
        hist.append(int(cur))
    return out


def main():
    seq = stream("data/fineweb_val_*.bin").numpy()
    h = hints(seq, np.zeros(8, dtype=bool))
    print(h.sum())


main()
'''
    rep = scan_code(src)
    hit = [f for f in rep.findings if f.rule == "code.target-in-key"]
    assert hit and "out[i] = best" in src.splitlines()[hit[0].line - 1]
    # Emitting the hint first and updating with the token afterwards is causal.
    causal = src.replace("        if starts:\n            out[i] = best.get(hist[-1], 0)\n", "        out[i] = best.get(hist[-1], 0)\n")
    assert "code.target-in-key" not in rules(causal)


def test_compile_warmup_on_val_with_a_moved_adapter_is_a_warning():
    src = HEAD + '''
class TinyLoRA(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.a = torch.nn.Linear(n, n)


def run(model, seq):
    lora = TinyLoRA(8).to("cpu")
    opt = torch.optim.AdamW(lora.parameters(), lr=1e-4)
    for ctx in (16, 64):
        row = seq[:ctx + 1].long()
        F.cross_entropy(lora(model(row[:-1])), row[1:]).backward()
        opt.step()
        opt.zero_grad()
    del lora, opt
    return evaluate(model, seq)


def main():
    seq = stream("data/fineweb_val_*.bin")
    print(run(torch.nn.Linear(8, 8), seq))


main()
'''
    rep = scan_code(src)
    assert [f.rule for f in rep.findings] == ["code.val-warmup"] and rep.verdict == "clean"


def test_target_keyed_hash_returned_by_a_helper_is_followed_into_the_lookup():
    src = HEAD + '''
def _keys(arr, pos):
    ctx_hash = arr[pos - 1].astype(np.uint64) * np.uint64(36313)
    tgt = arr[pos].astype(np.uint64)
    full = ((ctx_hash ^ (tgt * np.uint64(27191))) & np.uint64(1023)).astype(np.int64)
    return pos, full


def score(model, arr, table):
    loss_sum = 0.0
    pos = np.arange(1, len(arr))
    idx, fk = _keys(arr, pos)
    loss_sum += float(-np.log(table[fk] + 1.0).sum())
    return loss_sum


def main():
    arr = stream("data/fineweb_val_*.bin").numpy()
    print(score(None, arr, np.ones(1024)))


main()
'''
    rep = scan_code(src)
    hit = [f for f in rep.findings if f.rule == "code.target-in-key"]
    assert hit and "table[fk]" in src.splitlines()[hit[0].line - 1]
