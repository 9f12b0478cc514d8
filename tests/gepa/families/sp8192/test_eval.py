"""The sp8192 family's procedures on its fixture artifact, cut to a few thousand targets:
legality of the score-first SGD TTT (event log order and the perturbation property), the fast
path against the reference-shaped loop, the reference's GPU dtype layout, and the exactly-once
window partition against the reference's own window rule."""

from __future__ import annotations

import json

import pytest
import torch

from gepa import runner
from gepa.families.sp8192 import config as scfg
from gepa.families.sp8192.family import FAMILY, build_model
from gepa.parallel import evaluate_on_ranks
from gepa.valdata import ValData
from gepa.windows import plan_windows
from tests.support.paths import REPO

ROOT = REPO
FIX = ROOT / "tests" / "data" / "sp8192_small"
TOKENIZER = ROOT / "gepa" / "assets" / "fineweb_8192_bpe.model"
CUT = 4096  # targets: 32 sequences of 128, four TTT chunks of 1024


def fixture_config(mode: str, **ttt) -> scfg.EvalConfig:
    raw = json.loads((FIX / "eval_ttt_b.json").read_text())
    raw["eval"]["mode"] = mode
    raw["ttt"].update({"chunk_tokens": 1024, "epochs": 1, "batch_seqs": 4, **ttt})
    return scfg.from_dict(raw)


@pytest.fixture(scope="module")
def prepared():
    return runner.prepare(FIX / "final_model.int6.ptz", FIX / "eval_ttt_b.json")


@pytest.fixture(scope="module")
def data(prepared):
    d = FAMILY.load_data(prepared.cfg, str(FIX / "fineweb_val_*.bin"), TOKENIZER)
    return ValData(tokens=d.tokens[: CUT + 1].clone(), target_bytes=d.target_bytes[: CUT + 1].clone())


def evaluate(prepared, data, cfg, **kw):
    model = build_model(cfg, prepared.state, "cpu")
    return FAMILY.evaluate(model, data, cfg, device=torch.device("cpu"), **kw)


def test_event_log_scores_every_chunk_before_training_on_it(prepared, data):
    cfg = fixture_config("ttt")
    result = evaluate(prepared, data, cfg)
    events = result.events
    kinds = [(e.kind, e.chunk) for e in events]
    assert kinds == [("score", 0), ("train", 0), ("score", 1), ("train", 1), ("score", 2), ("train", 2),
                     ("score", 3)]  # the last chunk is never trained on
    for i, ev in enumerate(events):
        if ev.kind != "train":
            continue
        scored_before = set()
        for e in events[:i]:
            if e.kind == "score":
                scored_before.update(range(e.first_target, e.end_target))
        assert set(range(ev.first_target, ev.end_target)) <= scored_before
        for later in events[i + 1:]:
            if later.kind == "score":
                assert later.first_target >= ev.end_target  # nothing trained on is scored again
    assert result.tokens_scored == result.total_targets == CUT


@pytest.mark.parametrize("k", [0, 1])
def test_perturbing_tokens_after_chunk_k_leaves_earlier_losses_bit_identical(prepared, data, k):
    cfg = fixture_config("ttt", epochs=2, lr=0.05)
    chunk = cfg.ttt.chunk_tokens
    base = evaluate(prepared, data, cfg, collect_token_losses=True)
    g = torch.Generator().manual_seed(k)
    perturbed = data.tokens.clone()
    cut = (k + 1) * chunk + 1  # target t is token t + 1: tokens from here on belong to later chunks
    perturbed[cut:] = torch.randint(3, 8192, (perturbed.numel() - cut,), generator=g)
    other = evaluate(prepared, ValData(tokens=perturbed, target_bytes=data.target_bytes), cfg,
                     collect_token_losses=True)
    pos_a, nll_a = base.token_losses
    pos_b, nll_b = other.token_losses
    early = pos_a < cut
    assert early.sum() == (k + 1) * chunk
    assert torch.equal(pos_a, pos_b)
    assert torch.equal(nll_a[early], nll_b[early])  # bit-identical
    assert not torch.equal(nll_a[~early], nll_b[~early])  # the perturbation did reach later chunks


@pytest.mark.parametrize("mode", ["standard", "sliding", "ttt"])
def test_fast_path_equals_the_reference_shaped_loop(prepared, data, mode):
    cfg = fixture_config(mode)
    fast = evaluate(prepared, data, cfg, impl="fast")
    plain = evaluate(prepared, data, cfg, impl="plain")
    assert fast.tokens_scored == plain.tokens_scored and fast.bytes_scored == plain.bytes_scored
    assert fast.val_bpb == pytest.approx(plain.val_bpb, abs=1e-5)


def test_reference_dtypes_under_bf16_autocast(prepared, data):
    """Stands in for the CUDA path (no GPU here): the reference's layout is a bf16 tok_emb and fp32
    everything else, run under bf16 autocast. CPU autocast exercises the same dtype plumbing; the
    logits stay close to the fp32 ones."""
    cfg = fixture_config("standard")
    model = build_model(cfg, prepared.state, "cpu")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    x = data.tokens[:256].view(2, 128)
    ref = model.forward_logits(x)
    model.reference_dtypes()
    assert model.tok_emb.weight.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for n, p in model.named_parameters() if n != "tok_emb.weight")
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        low = model.forward_logits(x).float()
    assert low.shape == ref.shape and (low - ref).abs().mean() < 0.1


def _reference_windows(total: int, seq_len: int, stride: int) -> list[tuple[int, int, int]]:
    """The reference's rule (spec §6.2): starts 0, stride, ... while ws + ctx < total."""
    ctx, out, ws = seq_len - stride, [], 0
    while ws + ctx < total:
        wlen = min(ws + seq_len, total) - ws
        out.append((ws, wlen, 0 if ws == 0 else ctx))
        ws += stride
    return out


def test_exact_once_windows_are_the_references_partition():
    """Includes contexts shorter than a stride, where the last window is shorter than a stride
    and is the only one that scores the stream's last targets."""
    for seq_len in (8, 12, 31, 40):
        for stride in range(1, seq_len):
            for total in range(seq_len, 200, 3):
                plan = plan_windows(total, seq_len, stride, tail="exact_once", keep_first=True)
                got = list(zip(plan.starts.tolist(), plan.lengths.tolist(), plan.score_from.tolist()))
                want = [w for w in _reference_windows(total, seq_len, stride) if w[1] > w[2]]
                assert got == want, (total, seq_len, stride)
                assert plan.scored_targets() == total


def test_two_ranks_match_one_process(prepared, data):
    """Multi-process evaluation (gloo, CPU) splits the windows contiguously and all-reduces the sums."""
    cfg = fixture_config("sliding")
    single = evaluate(prepared, data, cfg)
    multi = evaluate_on_ranks(2, cfg, prepared.state, data, backend="gloo")
    assert multi.tokens_scored == single.tokens_scored and multi.bytes_scored == single.bytes_scored
    assert multi.val_bpb == pytest.approx(single.val_bpb, abs=1e-6)


def test_ttt_trains_every_parameter_unless_blocks_are_frozen(prepared, data):
    """R2 trains all parameters, tied embedding and scalars included; `freeze_blocks` (the
    eval_val_sliding_ttt variant) keeps the leading blocks' parameters fixed."""
    for freeze in (0, 2):
        cfg = fixture_config("ttt", freeze_blocks=freeze)
        model = build_model(cfg, prepared.state, "cpu")
        FAMILY.evaluate(model, data, cfg, device=torch.device("cpu"))
        after = model.state_dict()
        for name, before in prepared.state.items():
            frozen = any(name.startswith(f"blocks.{i}.") for i in range(freeze))
            changed = not torch.equal(after[name], before.float())
            assert changed != frozen, (freeze, name)
