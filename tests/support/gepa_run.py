"""Running the GEPA family's evaluation on a token tensor (helper for the evaluator tests)."""

from __future__ import annotations

import torch

from gepa.bpb import position_bytes
from gepa.families.gepa.family import FAMILY
from gepa.valdata import ValData


def run_gepa(model, tokens, luts, cfg, **kw):
    """The GEPA family's evaluation of `tokens` (bytes from the sentencepiece tables)."""
    data = ValData(tokens=tokens, target_bytes=position_bytes(tokens, luts))
    return FAMILY.evaluate(model, data, cfg, device=torch.device("cpu"), **kw)
