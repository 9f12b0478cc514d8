"""Evaluation equivalences, the reference's own numbers, and score-first legality."""

import copy

import pytest
import torch

from gepa.families.gepa import config
from gepa.families.gepa.family import build_model
from tests.support.gepa_run import run_gepa


def _run(model, tokens, luts, cfg, **kw):
    return run_gepa(copy.deepcopy(model), tokens, luts, cfg, **kw)


@pytest.mark.parametrize("mode,tol", [("standard", 1e-6), ("sliding", 1e-6), ("ttt", 1e-5)])
def test_reference_fixture_numbers(mode, tol, ref_dir, ref_state, ref_tokens, ref_expected, luts):
    """BPB computed by the public reference's own evaluation functions for its own artifact."""
    cfg = config.load(ref_dir / f"eval_{mode}.json")
    model = build_model(cfg, ref_state)
    result = run_gepa(model, ref_tokens, luts, cfg)
    assert ref_tokens.numel() == ref_expected["val_tokens_after_truncation"]
    assert result.val_bpb == pytest.approx(ref_expected[mode]["val_bpb"], abs=tol)
    assert result.val_loss == pytest.approx(ref_expected[mode]["val_loss"], abs=tol)
    if mode == "ttt":
        # The reference printed the running bpb of chunks 1, 11 and 12 to six decimals.
        logged = {1: 3.502289, 11: 3.177571, 12: 3.164546}
        for n, bpb in logged.items():
            assert round(result.chunks[n - 1].running_bpb, 6) == pytest.approx(bpb, abs=2e-6)
        assert len(result.chunks) == 12
        assert sum(c.windows for c in result.chunks) == 736


def test_sliding_with_stride_equal_to_seq_len_is_standard(tiny_model_factory, tiny_tokens, luts, make_config):
    model = tiny_model_factory()
    std = _run(model, tiny_tokens, luts, make_config(eval={"mode": "standard"}))
    sld = _run(model, tiny_tokens, luts, make_config(eval={"mode": "sliding", "stride": 64}))
    assert sld.tokens_scored == std.tokens_scored == tiny_tokens.numel() - 1
    assert sld.bytes_scored == std.bytes_scored
    assert sld.val_bpb == pytest.approx(std.val_bpb, rel=1e-6)


@pytest.mark.parametrize("mode", ["sliding", "ttt"])
def test_batched_scoring_equals_one_window_at_a_time(mode, tiny_model_factory, tiny_tokens, luts, make_config):
    model = tiny_model_factory()
    one = _run(model, tiny_tokens, luts, make_config(eval={"mode": mode, "batch_seqs": 1}))
    many = _run(model, tiny_tokens, luts, make_config(eval={"mode": mode, "batch_seqs": 16}))
    assert many.tokens_scored == one.tokens_scored
    assert many.val_bpb == pytest.approx(one.val_bpb, abs=1e-6)


@pytest.mark.parametrize("mode", ["sliding", "ttt"])
def test_fast_path_equals_reference_shaped_loop(mode, tiny_model_factory, tiny_tokens, luts, make_config):
    model = tiny_model_factory()
    cfg = make_config(eval={"mode": mode})
    fast = _run(model, tiny_tokens, luts, cfg, impl="fast")
    plain = _run(model, tiny_tokens, luts, cfg, impl="plain")
    assert (fast.tokens_scored, fast.bytes_scored) == (plain.tokens_scored, plain.bytes_scored)
    assert fast.val_bpb == pytest.approx(plain.val_bpb, abs=1e-5)
    assert [round(c.running_bpb, 5) for c in fast.chunks] == [round(c.running_bpb, 5) for c in plain.chunks]


def test_reference_tail_rescoring_and_exact_once(tiny_model_factory, tiny_tokens, luts, make_config):
    model = tiny_model_factory()
    total = tiny_tokens.numel() - 1
    ref = _run(model, tiny_tokens, luts, make_config(eval={"mode": "sliding"}))
    once = _run(model, tiny_tokens, luts, make_config(eval={"mode": "sliding", "tail": "exact_once"}))
    # seq_len 64, stride 16: three partial windows each re-score the last 16 targets.
    assert ref.tokens_scored == total + 3 * 16
    assert once.tokens_scored == total


def test_ttt_without_epochs_is_sliding(tiny_model_factory, tiny_tokens, luts, make_config):
    model = tiny_model_factory()
    sld = _run(model, tiny_tokens, luts, make_config(eval={"mode": "sliding"}))
    ttt0 = _run(model, tiny_tokens, luts, make_config(ttt={"epochs": 0}))
    ttt = _run(model, tiny_tokens, luts, make_config())
    assert ttt0.val_bpb == pytest.approx(sld.val_bpb, abs=1e-9)
    assert ttt.val_bpb != pytest.approx(sld.val_bpb, abs=1e-6)  # adaptation changed the score


@pytest.mark.parametrize("ttt_section", [
    {"optimizer": "sgd"},
    {"optimizer": "adamw", "lr": 0.003},
    {"optimizer": "sgd", "fake_quant_int6": True},
])
def test_score_first_legality(ttt_section, tiny_model_factory, tiny_tokens, luts, make_config):
    """Changing any token after chunk k leaves every per-token loss of chunks 0..k unchanged,
    and the event log shows each chunk scored before it is trained on."""
    cfg = make_config(ttt=ttt_section)
    model = tiny_model_factory(cfg)
    chunk = cfg.ttt.chunk_tokens
    base = _run(model, tiny_tokens, luts, cfg, collect_token_losses=True)
    k = 3
    boundary = (k + 1) * chunk  # token index of chunk k's last target
    changed = tiny_tokens.clone()
    gen = torch.Generator().manual_seed(7)
    changed[boundary + 1:] = torch.randint(2, 1024, (changed.numel() - boundary - 1,), generator=gen)
    other = _run(model, changed, luts, cfg, collect_token_losses=True)
    pos_a, nll_a = base.token_losses
    pos_b, nll_b = other.token_losses
    assert torch.equal(pos_a, pos_b)
    early = pos_a <= boundary
    assert early.sum() > 0
    assert torch.equal(nll_a[early], nll_b[early])
    assert not torch.equal(nll_a[~early], nll_b[~early])
    # Event log: score(ci) precedes train(ci); training touches only targets already scored.
    scored_upto = 0
    seen_score = set()
    for ev in base.events:
        if ev.kind == "score":
            seen_score.add(ev.chunk)
            scored_upto = max(scored_upto, ev.end_target)
        else:
            assert ev.chunk in seen_score
            assert ev.end_target <= scored_upto
    trained = [ev.chunk for ev in base.events if ev.kind == "train"]
    last = max(ev.chunk for ev in base.events)
    assert last not in trained and len(trained) == last


def test_ttt_records_per_chunk_timing(tiny_model_factory, tiny_tokens, luts, make_config):
    cfg = make_config()
    seen = []
    result = _run(tiny_model_factory(), tiny_tokens, luts, cfg, on_chunk=seen.append)
    assert [c.index for c in seen] == list(range(len(seen))) and len(seen) == 10
    assert sum(c.tokens_scored for c in seen) == result.tokens_scored
    assert all(c.train_seconds > 0 for c in seen[:-1]) and seen[-1].train_seconds == 0
    assert seen[0].lr == pytest.approx(cfg.ttt.lr) and seen[-2].lr < seen[1].lr
    assert seen[-1].running_bpb == pytest.approx(result.val_bpb)
