"""CaseOps model and procedure properties: fast = plain, documents never see each other (segmented
attention and the BOS-fixed SmearGate), standard-eval batch truncation, document grouping."""

from __future__ import annotations

import torch

from tests.support.caseops_tiny import BOS, build, config, state, stream
from gepa.families.caseops import procedures
from gepa.families.caseops.model import segments


def _score(mode: str, impl: str, **ttt) -> float:
    cfg = config(mode, **ttt)
    toks = stream()
    g = torch.Generator().manual_seed(5)
    tbytes = torch.randint(1, 4, toks.shape, generator=g)
    res = procedures.run(build(state(), cfg), toks, tbytes, cfg, device=torch.device("cpu"), impl=impl)
    return res.val_bpb


def test_fast_equals_plain():
    for mode, ttt in (("standard", {}), ("caseops_phased_ttt", {}), ("caseops_phased_ttt", {"optimizer": "sgd"})):
        fast, plain = _score(mode, "fast", **ttt), _score(mode, "plain", **ttt)
        assert abs(fast - plain) < 1e-5, (mode, ttt, fast, plain)


def test_a_document_never_sees_the_previous_one():
    cfg = config("standard")
    model = build(state(), cfg)
    a = torch.tensor([[BOS, 5, 6, 7, 8, BOS, 9, 10, 11, 12, 13]])
    b = a.clone()
    b[0, 1:5] = torch.tensor([40, 41, 42, 43])  # a different first document
    with torch.no_grad():
        ha = model.hidden(a, segments(a, BOS, 16))
        hb = model.hidden(b, segments(b, BOS, 16))
        assert not torch.allclose(ha[0, :5], hb[0, :5])
        assert torch.allclose(ha[0, 5:], hb[0, 5:], atol=1e-6, rtol=0)  # BOS fix + per-document attention
        # Without the BOS fix the SmearGate would carry token 4 into the second document's BOS.
        model.bos_id = -1
        hc = model.hidden(a, segments(a, BOS, 16))
        hd = model.hidden(b, segments(b, BOS, 16))
        assert not torch.allclose(hc[0, 5:], hd[0, 5:], atol=1e-6, rtol=0)


def test_long_documents_are_cut_every_seq_len_from_their_start():
    ids = torch.tensor([[7, 7, BOS] + [3] * 20 + [BOS, 4]])
    s = segments(ids, BOS, 8)
    lens = s.valid.sum(1).tolist()
    starts = s.idx[:, 0].tolist()
    assert starts == [0, 2, 10, 18, 23] and lens == [2, 8, 8, 5, 2]


def test_standard_batches_drop_each_ranks_tail():
    assert procedures.standard_batches(101, 1, 4)[-1] == (96, 100)  # the fixture: 100 of 101 sequences
    got = procedures.standard_batches(23365, 8, 32)
    assert sum(b - a for a, b in got) == 23296  # the record run's figure (spec §5.1)


def test_groups_are_longest_first_with_their_original_index():
    docs = [(0, 5), (5, 9), (14, 3), (17, 7), (24, 2)]
    groups = procedures.ttt_groups(docs, 2)
    assert [g for g, _ in groups] == [2, 1, 0]
    assert groups[0][1] == [(5, 9)] and groups[2][1] == [(24, 2), (14, 3)]
    assert procedures.find_docs(torch.tensor([BOS, 4, 5, BOS, 6, BOS, 7, 8]), BOS) == [(0, 4), (3, 3), (5, 3)]


def test_bf16_autocast_path_runs_and_stays_close(monkeypatch):
    """The CUDA path runs the procedures under bf16 autocast. No GPU here, so this mocks the GPU
    with CPU bf16 autocast: it catches dtype mix-ups and shows the bf16 drift is small."""
    fp32 = {m: _score(m, "fast") for m in ("standard", "caseops_phased_ttt")}
    monkeypatch.setattr(procedures._Run, "autocast", lambda self: torch.autocast("cpu", dtype=torch.bfloat16))
    for mode, ref in fp32.items():
        got = _score(mode, "fast")
        assert got != ref and abs(got - ref) < 0.05 * ref, (mode, got, ref)
