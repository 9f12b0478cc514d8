"""Legality by construction of every CaseOps TTT variant (phased with AdamW, phased with SGD,
LoRA-only): the event log shows each target scored before any update used it, and changing every
token not yet scored after step k leaves the per-token losses of steps <= k bit-identical."""

from __future__ import annotations

import pytest
import torch

from tests.support.caseops_tiny import BOS, VOCAB, build, config, state, stream
from gepa.families.caseops import procedures

VARIANTS = {
    "phased_adam": dict(optimizer="adam"),
    "phased_sgd": dict(optimizer="sgd", lora_lr=0.05, beta1=0.5),
    "lora_only": dict(optimizer="adam", prefix_docs=0),
}


def run(cfg, toks, sd):
    model = build(sd, cfg)
    tbytes = torch.ones_like(toks)
    return procedures.run(model, toks, tbytes, cfg, device=torch.device("cpu"), collect_token_losses=True)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_event_log_scores_before_training(name):
    cfg = config(**VARIANTS[name])
    toks, sd = stream(), state()
    res = run(cfg, toks, sd)
    scored: set[int] = set()
    trains = 0
    for ev in res.events:
        span = set(range(ev.first_target, ev.end_target))
        if ev.kind == "score":
            assert not span & scored, "a target was scored twice"
            scored |= span
        else:
            assert ev.kind == "train"
            assert span <= scored, f"step {ev.chunk} trained on targets not scored yet"
            trains += 1
    assert scored == set(range(1, toks.numel()))  # every target exactly once
    assert trains > 0
    phase_events = [e for e in res.events if e.kind == "train" and e.end_target - e.first_target > cfg.caseops_ttt.chunk_size]
    assert bool(phase_events) == (cfg.caseops_ttt.prefix_docs > 0)  # global phases only when asked for


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_perturbing_unscored_tokens_leaves_earlier_losses_bit_identical(name):
    cfg = config(**VARIANTS[name])
    toks, sd = stream(), state()
    base = run(cfg, toks, sd)
    pos, nll = base.token_losses
    steps = base.token_steps
    for k in (int(steps.max()) // 3, 2 * int(steps.max()) // 3):
        done = set(pos[steps <= k].tolist())
        changed = toks.clone()
        for p in range(1, toks.numel()):
            if p not in done and int(toks[p]) != BOS:
                changed[p] = 2 + (int(toks[p]) - 2 + 7) % (VOCAB - 2)
        assert not torch.equal(changed, toks)
        other = run(cfg, changed, sd)
        opos, onll = other.token_losses
        before, obefore = steps <= k, other.token_steps <= k
        assert torch.equal(pos[before], opos[obefore])
        assert torch.equal(nll[before], onll[obefore]), f"losses up to step {k} depend on later tokens"
        assert not torch.equal(nll, onll)  # and the perturbation did change later scores
