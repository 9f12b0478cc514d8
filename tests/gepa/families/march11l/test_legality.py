"""Legality by construction of the march11l family's score-first TTT (the 03-23 record's).

- The event log shows every chunk scored before any SGD step used its targets, and the last chunk
  never trained on.
- Perturbation: changing every token after chunk k leaves the per-token losses of chunks 0..k
  bit-identical, with and without late-QAT fake quantisation and with frozen blocks.
"""

from __future__ import annotations

import json

import pytest
import torch

from gepa import runner
from gepa.families.march11l.family import specs
from gepa.valdata import ValData
from tests.support.paths import REPO

FIX = REPO / "tests" / "data" / "march11l_small"
VAL = str(FIX / "fineweb_val_*.bin")
ART = FIX / "variants" / "final_model_c.int6.ptz"
MAX_TOKENS = 6144  # three 2,048-token chunks


def _prepared(**ttt):
    raw = json.loads((FIX / "variants" / "eval_c_ttt.json").read_text())
    raw["ttt"].update(epochs=1, **ttt)
    return runner.prepare(ART, raw)


def _evaluate(prep, data):
    model = prep.family.build_model(prep.cfg, prep.state, torch.device("cpu"))
    return prep.family.evaluate(model, data, prep.cfg, device=torch.device("cpu"), collect_token_losses=True)


@pytest.mark.parametrize("ttt", [{}, {"fake_quant_int6": False, "freeze_blocks": 2}])
def test_ttt_is_score_first_and_the_future_cannot_change_the_past(ttt):
    prep = _prepared(**ttt)
    full = prep.family.load_data(prep.cfg, VAL, runner.default_tokenizer(prep.family))
    data = ValData(tokens=full.tokens[: MAX_TOKENS + 1].clone(), target_bytes=full.target_bytes[: MAX_TOKENS + 1].clone())
    base = _evaluate(prep, data)
    scored_upto, seen = 0, set()
    for ev in base.events:
        if ev.kind == "score":
            seen.add(ev.chunk)
            scored_upto = max(scored_upto, ev.end_target)
        else:
            assert ev.chunk in seen and ev.end_target <= scored_upto, ev
    trained = [ev.chunk for ev in base.events if ev.kind == "train"]
    last = max(ev.chunk for ev in base.events)
    assert trained == list(range(last)) and last == 2

    k = 0
    boundary = (k + 1) * prep.cfg.ttt.chunk_tokens  # chunk k's last target
    changed = data.tokens.clone()
    gen = torch.Generator().manual_seed(11)
    changed[boundary + 1:] = torch.randint(2, 1024, (changed.numel() - boundary - 1,), generator=gen)
    other = _evaluate(prep, ValData(tokens=changed, target_bytes=data.target_bytes))
    pos_a, nll_a = base.token_losses
    pos_b, nll_b = other.token_losses
    assert torch.equal(pos_a, pos_b)
    early = pos_a <= boundary
    assert int(early.sum()) >= 2000
    assert torch.equal(nll_a[early], nll_b[early])
    assert not torch.equal(nll_a[~early], nll_b[~early])


def test_freezing_blocks_freezes_their_vectors_only():
    """The banked references keep block matrices outside `blocks.N.`: freezing leaves them trainable."""
    prep = _prepared(freeze_blocks=2)
    model = prep.family.build_model(prep.cfg, prep.state, torch.device("cpu"))
    names = {id(p): n for n, p in model.named_parameters()}
    trainable = {names[id(p)] for p in specs(prep.cfg)["ttt"].trainable(model)}
    assert "blocks.0.mlp.fc.weight" in trainable and "blocks.1.attn.c_q.weight" in trainable
    assert "blocks.0.attn_scale" not in trainable and "blocks.1.attn.q_gain" not in trainable
    assert "blocks.2.attn_scale" in trainable and "tok_emb.weight" in trainable
