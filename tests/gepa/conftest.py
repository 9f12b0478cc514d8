"""Shared fixtures for evaluator tests: the reference fixture, tiny configs and artifacts."""

from __future__ import annotations

import json

import pytest
import torch

from gepa import codec
from gepa.containers import clean
from gepa.families.gepa import config
from gepa.families.gepa.model import GPT
from gepa.shards import BUNDLED_VAL_GLOB, load_validation_tokens
from gepa.tokenizer import BUNDLED_TOKENIZER, build_byte_luts, load_tokenizer
from tests.support.paths import DATA

REF = DATA / "reference_small"

TINY = {
    "model": {"num_layers": 3, "model_dim": 64, "num_heads": 4, "num_kv_heads": 2, "mlp_hidden": 128,
              "bigram_buckets": 64, "bigram_embed_dim": 16, "rope_dims": 8, "rope_train_seq_len": 32,
              "xsa_layers": 1, "ve_dim": 16, "ve_layers": [1, 2]},
    "eval": {"mode": "ttt", "seq_len": 64, "stride": 16, "batch_seqs": 4},
    "ttt": {"chunk_tokens": 256, "epochs": 2, "batch_seqs": 2, "freeze_blocks": 1, "fake_quant_int6": False},
}


def tiny_config(**sections) -> config.EvalConfig:
    raw = json.loads(json.dumps(TINY))
    for name, values in sections.items():
        raw[name].update(values)
    return config.from_dict(raw)


@pytest.fixture(scope="session")
def make_config():
    return tiny_config


@pytest.fixture(scope="session")
def ref_dir():
    return REF


@pytest.fixture(scope="session")
def luts():
    return build_byte_luts(load_tokenizer(BUNDLED_TOKENIZER), 1024)


@pytest.fixture(scope="session")
def ref_tokens():
    return load_validation_tokens(str(REF / "fineweb_val_*.bin"), 256)


@pytest.fixture(scope="session")
def ref_state():
    return clean.load_state_dict(codec.read_artifact(REF / "final_model.int6.ptz"))


@pytest.fixture(scope="session")
def ref_expected():
    return json.loads((REF / "expected.json").read_text())


@pytest.fixture(scope="session")
def tiny_tokens():
    # 40 sequences of the bundled real shard: enough for several TTT chunks, fast on CPU.
    return load_validation_tokens(BUNDLED_VAL_GLOB, 64)[: 64 * 40 + 1].clone()


@pytest.fixture
def tiny_model_factory():
    """Build the same randomly initialised (non-trivial) tiny model on every call."""

    def make(cfg: config.EvalConfig | None = None) -> GPT:
        cfg = cfg or tiny_config()
        torch.manual_seed(1234)
        model = GPT(cfg.model)
        with torch.no_grad():
            # Zero-initialised output projections would hide most of the network; perturb them.
            for p in model.parameters():
                if p.ndim == 2:
                    p.add_(torch.randn_like(p) * 0.02)
        return model.eval()

    return make

