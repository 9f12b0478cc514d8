"""The march11l model against the full-size records: built at each record's settings, it has
exactly the parameter count the record's own training log prints (`model_params:`), so its tensor
set is the records' (tensor for tensor, given the names the containers carry); the shapes of such
a model infer back to the same config, and the family's sniffing claims them."""

from __future__ import annotations

import re

import pytest
import torch

from gepa.families.march11l import config as mcfg
from gepa.families.march11l.infer import claims, infer_model
from gepa.families.march11l.model import GPT
from tests.support.paths import REPO

RECORDS = REPO / "tests" / "data" / "records" / "track_10min_16mb"
# folder -> the model keys that differ from the 03-22 record's (the family's defaults); bigram
# sizes from the folder names and row 25's submission.json ("BigramHash(1536)"), the rest from
# the scripts' switches and the logs' `XSA:last_N` lines
ROWS = {
    "2026-03-29_Loader_FullGPTQ_XSA11_BigramHash2816": {"bigram_buckets": 2816, "bigram_embed_dim": 112,
                                                         "xsa_layers": 11, "march11l_activation": "leaky_relu2"},
    "2026-03-25_ValCalib_GPTQ_XSA_BigramHash3072": {"bigram_buckets": 3072, "bigram_embed_dim": 112,
                                                     "xsa_layers": 11, "march11l_activation": "leaky_relu2"},
    "2026-03-23_LeakyReLU_LegalTTT_ParallelMuon": {"bigram_buckets": 1536, "march11l_activation": "leaky_relu2"},
    "2026-03-22_11L_EMA_GPTQ-lite_warmdown3500_QAT015_1.1233": {},
    "2026-03-21_11L_XSA4_EMA_PartialRoPE_LateQAT_1.1248": {"ve_enabled": False, "ve_layers": []},
    "2026-03-20_11L_XSA4_EMA_Int6_MLP3x_WD04_1.1271": {"ve_enabled": False, "ve_layers": [], "rope_dims": 0,
                                                        "ln_scale": False},
    "2026-03-20_11L_EfficientPartialXSA_FA3_SWA120": {"ve_enabled": False, "ve_layers": [], "rope_dims": 0,
                                                       "ln_scale": False, "xsa_layers": 3},
}


def _logged_params(folder: str) -> int:
    counts = {int(m.group(1)) for log in (RECORDS / folder).glob("*.log")
              for m in re.finditer(r"model_params:(\d+)", log.read_text(errors="replace"))}
    assert len(counts) == 1, f"{folder}: {counts}"
    return counts.pop()


def _model(keys: dict) -> GPT:
    cfg = mcfg.from_dict({"model": keys})
    with torch.device("meta"):
        return GPT(cfg.model)


@pytest.mark.parametrize("folder", sorted(ROWS))
def test_the_model_has_the_records_logged_parameter_count(folder):
    model = _model(ROWS[folder])
    assert sum(p.numel() for p in model.parameters()) == _logged_params(folder)


@pytest.mark.parametrize("folder", sorted(ROWS))
def test_full_size_shapes_infer_the_records_config_and_are_claimed(folder):
    model = _model(ROWS[folder])
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    inferred = infer_model(shapes)
    want = mcfg.from_dict({"model": ROWS[folder]}).model
    for key in ("vocab_size", "num_layers", "model_dim", "num_heads", "num_kv_heads", "mlp_hidden", "bigram_buckets",
                "bigram_embed_dim", "ve_enabled", "tie_embeddings"):
        assert inferred[key] == getattr(want, key), key
    if want.ve_enabled:
        assert inferred["ve_dim"] == want.ve_dim and inferred["ve_layers"] == list(want.ve_layers)
    else:
        assert inferred["ve_layers"] == []
    # the container's meta as mixed_quantize_int6 writes it (large matrices int6/int8, the rest passthrough)
    meta = {name: ({"type": "int6"} if (".mlp." in name or ".attn." in name) and len(s) == 2 and s[0] * s[1] > 65536
                   else {"type": "int8"} if len(s) == 2 and s[0] * s[1] > 65536 else "passthrough")
            for name, s in shapes.items()}
    assert claims(meta)
