"""The GEPA module: state-dict layout of the seed run, reference artifact loading, causality."""


import torch

from gepa.containers import clean
from gepa.families.gepa import config
from gepa.families.gepa.family import build_model
from gepa.families.gepa.model import GPT, count_params, expected_state, fake_quant_int6
from gepa.families.gepa.quantize import quantize_state_dict
from gepa import codec



def test_seed_config_state_dict_matches_spec():
    state = expected_state(config.DEFAULT.model)
    # Spec 2.9: 144 tensors, 27,030,108 parameters, tok_emb the only bf16 tensor.
    assert len(state) == 144
    assert sum(torch.Size(s).numel() for s, _ in state.values()) == 27_030_108
    assert [k for k, (_, dt) in state.items() if dt == torch.bfloat16] == ["tok_emb.weight"]
    assert state["blocks.3.attn.c_k.weight"][0] == (256, 512)
    assert state["blocks.10.mlp.down_proj.weight"][0] == (512, 1536)
    assert state["bigram_emb.embed.weight"][0] == (2048, 128)
    assert state["ve_shared.proj.weight"][0] == (256, 128)
    assert state["skip_weights"][0] == (5, 512)
    assert list(state)[:3] == ["skip_weights", "skip_gates", "tok_emb.weight"]
    frozen = sum(torch.Size(s).numel() for k, (s, _) in state.items() if k.startswith(("blocks.0.", "blocks.1.")))
    assert frozen == 4_728_848  # "ttt_sliding:params ... frozen=4728848" in the seed log


def test_reference_artifact_loads_strict(ref_state, ref_dir):
    cfg = config.load(ref_dir / "eval_ttt.json")
    model = build_model(cfg, ref_state)
    assert count_params(model) == 460_804 + 1_340_171  # the reference's TTT log line
    assert set(model.state_dict()) == set(ref_state)


def test_reference_dtypes_only_embedding_is_bf16(make_config):
    model = GPT(make_config().model).reference_dtypes()
    dtypes = {k: v.dtype for k, v in model.state_dict().items()}
    assert dtypes.pop("tok_emb.weight") == torch.bfloat16
    assert set(dtypes.values()) == {torch.float32}


def test_causal_future_tokens_do_not_change_past_logits(tiny_model_factory):
    model = tiny_model_factory()
    x = torch.randint(0, 1024, (2, 64))
    y = x.clone()
    y[:, 40:] = torch.randint(0, 1024, (2, 24))
    with torch.no_grad():
        a, b = model.forward_logits(x), model.forward_logits(y)
    assert torch.equal(a[:, :40], b[:, :40])
    assert not torch.allclose(a[:, 40:], b[:, 40:])


def test_bigram_first_position_uses_reserved_bucket(make_config):
    model = GPT(make_config().model)
    ids = torch.tensor([[5, 7, 9], [1, 2, 3]])
    buckets = model.bigram_emb.bucket_ids(ids)
    assert buckets[:, 0].tolist() == [63, 63]
    assert buckets[0, 1].item() == ((36313 * 7) ^ (27191 * 5)) % 63


def test_fake_quant_floor_and_range():
    w = torch.tensor([[0.01, -0.02, 0.5], [3.1, -3.1, 0.0]])
    q = fake_quant_int6(w)
    # Row 0 max 0.5 < 1, so the step is the 1/31 floor; 0.01 rounds to 0.
    assert q[0, 0] == 0
    assert torch.allclose(q[0, 2], torch.tensor(round(0.5 * 31) / 31))
    assert torch.allclose(q[1, :2], torch.tensor([3.1, -3.1]))


def test_rope_base_rescales_only_past_train_length(make_config):
    model = GPT(make_config().model)
    rot = model.blocks[0].attn.rotary
    cos_short, _ = rot.cos_sin(32, torch.device("cpu"))
    cos_long, _ = rot.cos_sin(64, torch.device("cpu"))
    # Up to train length the table is the plain one; past it every frequency shrinks.
    plain = torch.cos(torch.arange(32.0)[:, None] * rot.inv_freq[None, :])
    assert torch.allclose(cos_short[0, 0], plain)
    assert not torch.allclose(cos_long[0, 0, :32], plain)


def test_last_block_query_pruning_matches_full_hidden(tiny_model_factory):
    model = tiny_model_factory()
    ids = torch.randint(0, 1024, (3, 64))
    with torch.no_grad():
        full = model.hidden(ids)
        for q_from in (1, 17, 48, 63):
            part = model.hidden(ids, q_from=q_from)
            assert part.shape == (3, 64 - q_from, 64)
            assert torch.allclose(part, full[:, q_from:], atol=1e-5, rtol=1e-5)


def test_seed_size_artifact_round_trips_into_the_model():
    """The full-size seed configuration: reference quantizer → container → safe reader → strict load."""
    torch.manual_seed(0)
    model = GPT(config.DEFAULT.model).reference_dtypes()
    blob = codec.serialize(quantize_state_dict(model.state_dict()), compression="zlib")
    state = clean.load_state_dict(codec.read_artifact(blob), expected=expected_state(config.DEFAULT.model))
    loaded = build_model(config.DEFAULT, state)
    assert loaded.state_dict()["tok_emb.weight"].shape == (1024, 512)
    with torch.no_grad():
        ids = torch.randint(0, 1024, (1, 2048))
        loss = loaded(ids[:, :-1], ids[:, 1:])
    assert torch.isfinite(loss)


def test_loaded_model_equals_constructed_model_within_rope_train_length(tiny_model_factory, make_config):
    """build_model materialises parameters with `to_empty`; the rotary table must not depend on
    the (uninitialised) non-persistent buffer, including for sequences no longer than
    rope_train_seq_len, where no base rescaling applies."""
    cfg = make_config(model={"rope_train_seq_len": 64})
    ref = tiny_model_factory(cfg)
    loaded = build_model(cfg, {k: v.clone() for k, v in ref.state_dict().items()})
    for m in loaded.modules():  # poison the buffers as uninitialised memory might
        if hasattr(m, "inv_freq"):
            m.inv_freq.fill_(float("nan"))
    ids = torch.randint(0, 1024, (2, 64))
    with torch.no_grad():
        assert torch.allclose(loaded.forward_logits(ids), ref.forward_logits(ids), atol=1e-6)
