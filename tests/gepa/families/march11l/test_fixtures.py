"""The march11l family against its fixtures (tests/data/march11l_small, written by the public
reference code): every `eval_*.json` through the public CLI reproduces the number the reference's
own evaluation functions returned; detection from content, `inspect --json` printing a config
`evaluate` accepts, configs that contradict the tensors, fast = plain, the FLOP model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gepa import codec, families, runner
from gepa.families.march11l import config as mcfg
from gepa.families.march11l.infer import claims
from tests.support.inprocess_cli import assert_one_line_error, run as cli
from tests.support.paths import REPO

ROOT = REPO
FIX = ROOT / "tests" / "data" / "march11l_small"
VAL = str(FIX / "fineweb_val_*.bin")
TOKENIZER = ROOT / "gepa" / "assets" / "fineweb_1024_bpe.model"
EXPECTED = json.loads((FIX / "expected.json").read_text())["cases"]
# (case, mode) for every shipped config: the folder's artifact is case "a", the others in variants/
CONFIGS = sorted([("a", p.stem.removeprefix("eval_")) for p in FIX.glob("eval_*.json")]
                 + [tuple(p.stem.removeprefix("eval_").split("_", 1)) for p in (FIX / "variants").glob("eval_*.json")])


def artifact(case: str) -> Path:
    return FIX / EXPECTED[case]["artifact"]


def config_path(case: str, mode: str) -> Path:
    return FIX / f"eval_{mode}.json" if case == "a" else FIX / "variants" / f"eval_{case}_{mode}.json"


def test_every_reference_number_has_a_config():
    assert {(c, m) for c, out in EXPECTED.items() for m in out
            if m.startswith(("standard", "sliding", "ttt")) and not m.endswith("_log")} == set(CONFIGS)
    # The cases cover every switch of the lineage: both activations, value embeddings on and
    # off, partial and full RoPE, LN scale on and off, XSA on some and on all layers, zstd and xz.
    sw = [(out["activation"], out["compressor"], tuple(sorted(out["switches"].items()))) for out in EXPECTED.values()]
    assert {a for a, _, _ in sw} == set(mcfg.ACTIVATIONS) and {c for _, c, _ in sw} == {"zstd", "xz"}
    flat = [dict(s) for _, _, s in sw]
    assert {f["ve_enabled"] for f in flat} == {True, False} and {f["ln_scale"] for f in flat} == {True, False}
    assert {f["rope_dims"] for f in flat} == {0, 16} and max(f["xsa_last_n"] for f in flat) == 4


@pytest.mark.parametrize("case,name", CONFIGS)
def test_fixture_reproduces_the_reference_number(case, name, capsys):
    path = config_path(case, name)
    mode = json.loads(path.read_text())["eval"]["mode"]
    rc, out, err = cli(capsys, "evaluate", artifact(case), "--config", path, "--val", VAL,
                       "--tokenizer", TOKENIZER, "--json")
    assert rc == 0, err
    got = json.loads(out)
    loss, bpb = EXPECTED[case][name]
    tol = 2e-4 if mode == "ttt" else 1e-5
    assert got["family"] == "march11l" and got["mode"] == mode
    assert got["val_bpb"] == pytest.approx(bpb, abs=tol)
    assert got["val_loss"] == pytest.approx(loss, abs=tol)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_detection_and_inspect_config_round_trip(case, capsys, tmp_path):
    rc, out, err = cli(capsys, "inspect", artifact(case), "--json")
    assert rc == 0, err
    info = json.loads(out)
    assert info["family"] == "march11l" and info["kind"] == "gptq"
    assert info["compression"] == EXPECTED[case]["compressor"]
    tensors = {t["name"]: t for t in info["tensors"]}
    assert tensors["blocks.0.mlp.fc.weight"]["scheme"] == "gptq_int6"
    assert tensors["tok_emb.weight"]["scheme"] == "gptq_int8"
    shipped = json.loads(config_path(case, "standard").read_text())["model"]
    for key in ("vocab_size", "num_layers", "model_dim", "num_heads", "num_kv_heads", "mlp_hidden", "bigram_buckets",
                "bigram_embed_dim", "ve_enabled", "tie_embeddings"):
        assert info["config"]["model"][key] == shipped[key], key
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(info["config"]))
    rc, out, err = cli(capsys, "evaluate", artifact(case), "--config", path, "--val", VAL, "--max-tokens", "4096",
                       "--mode", "standard", "--json")
    assert rc == 0, err
    assert json.loads(out)["family"] == "march11l"


def test_the_cli_says_which_family_it_detected(capsys):
    rc, out, err = cli(capsys, "evaluate", artifact("a"), "--val", VAL, "--max-tokens", "4096", "--mode", "standard")
    assert rc == 0, err
    assert "family         march11l (detected from the artifact)" in out


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_only_march11l_claims_the_artifacts(case):
    art = codec.read_artifact(artifact(case))
    assert [f.name for f in families.registry().values() if f.sniff(art)] == ["march11l"]


def test_march11l_does_not_claim_a_container_with_foreign_names_or_tags():
    art = codec.read_artifact(artifact("a"))
    meta = art.container["m"]
    assert claims(meta)
    assert not claims({**meta, "skip_gates": "passthrough"})            # a GEPA/sp8192 tensor
    assert not claims({**meta, "blocks.0.mlp.fc.weight": "gptq (int6)"})  # the SP8192 lineage's tag
    assert not claims({k: v for k, v in meta.items() if k != "smear.gate"})


@pytest.mark.parametrize("key,value,needle", [
    ("num_layers", 11, "set model.num_layers to 4"),
    ("num_kv_heads", 4, "set model.num_kv_heads to 2"),
    ("mlp_hidden", 1536, "set model.mlp_hidden to 480"),
    ("bigram_buckets", 2048, "set model.bigram_buckets to 1536"),
    ("ve_enabled", False, "set model.ve_enabled to True"),
    ("ve_layers", [3], "model.ve_layers"),
    ("tie_embeddings", False, "set model.tie_embeddings to True"),
    ("march11l_activation", "gelu", "model.march11l_activation"),
    ("march11l_rope_table", "bf16_positions", "model.march11l_rope_table"),
])
def test_a_config_that_contradicts_the_tensors_names_the_key(key, value, needle, capsys, tmp_path):
    cfg = json.loads((FIX / "eval_standard.json").read_text())
    cfg["model"][key] = value
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(cfg))
    rc, out, err = cli(capsys, "evaluate", artifact("a"), "--config", path, "--val", VAL)
    assert_one_line_error(rc, err)
    assert needle in err and out == ""


@pytest.mark.parametrize("section,key,value,needle", [
    ("ttt", "optimizer", "adamw", "ttt.optimizer"),
    ("ttt", "lr_schedule", "constant", "ttt.lr_schedule"),
    ("ttt", "chunk_tokens", 1000, "ttt.chunk_tokens"),
    ("eval", "tail", "last", "eval.tail"),
])
def test_bad_ttt_configs_exit_2(section, key, value, needle, capsys, tmp_path):
    cfg = json.loads((FIX / "variants" / "eval_c_ttt.json").read_text())
    cfg[section][key] = value
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(cfg))
    rc, out, err = cli(capsys, "evaluate", artifact("c"), "--config", path, "--val", VAL)
    assert_one_line_error(rc, err)
    assert needle in err


def test_a_gepa_config_on_a_march11l_artifact_is_bad_input(capsys, tmp_path):
    raw = json.loads((ROOT / "tests" / "data" / "reference_small" / "eval_standard.json").read_text())
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(raw))
    rc, out, err = cli(capsys, "evaluate", artifact("a"), "--config", path, "--val", VAL)
    assert_one_line_error(rc, err)
    assert "set model." in err or "march11l-family model" in err


@pytest.mark.parametrize("other,needle", [
    ("reference_small/final_model.int6.ptz", "it is a clean container (mixed_clean_per_row_v1)"),
    ("baseline_small/final_model.int8.ptz", "it is a clean container (int8_clean_per_row_v1)"),
    ("sp8192_small/final_model.int6.ptz", "it has no smear.gate tensor"),
    ("caseops_small/final_model.int6.ptz", "it has no smear.gate tensor"),
])
def test_a_march11l_config_on_another_familys_artifact_is_bad_input(other, needle, capsys):
    rc, out, err = cli(capsys, "evaluate", ROOT / "tests" / "data" / other, "--config", FIX / "eval_standard.json",
                       "--val", VAL)
    assert_one_line_error(rc, err)
    assert "the config names family march11l" in err and needle in err and out == ""


@pytest.mark.parametrize("case,mode", [("a", "sliding"), ("b", "sliding"), ("c", "ttt")])
def test_fast_path_equals_plain(case, mode):
    raw = json.loads(config_path(case, mode).read_text())
    fast = runner.run_evaluation(artifact(case), raw, val_glob=VAL, impl="fast")
    plain = runner.run_evaluation(artifact(case), raw, val_glob=VAL, impl="plain")
    assert fast.tokens_scored == plain.tokens_scored
    assert fast.val_bpb == pytest.approx(plain.val_bpb, abs=1e-5)
    assert fast.val_loss == pytest.approx(plain.val_loss, abs=1e-5)


def test_flop_model_orders_the_procedures():
    fam = families.get("march11l")
    n = 62_021_632
    std, sw, ttt = (fam.flops(mcfg.from_dict({"eval": {"mode": m}}), n) for m in ("standard", "sliding", "ttt"))
    assert 0 < std < sw < ttt
    # Standard eval of the 11x512 record: about 2 x 27M parameters' worth of FLOPs per token plus attention.
    assert 2 * 26e6 * n < std < 2 * 40e6 * n


def test_each_switch_moves_the_number():
    """The fixtures can fail: flipping a switch the tensors do not record changes the result."""
    raw = json.loads((FIX / "eval_standard.json").read_text())
    base = runner.run_evaluation(artifact("a"), raw, val_glob=VAL, max_tokens=2048).val_bpb
    # (the rotary table state is the subtlest: it moves this BPB by about 1.3e-5, beyond the 1e-5 tolerance)
    for key, value, moves in (("march11l_activation", "leaky_relu2", 1e-2), ("xsa_layers", 1, 1e-3),
                              ("ln_scale", False, 1e-3), ("rope_dims", 0, 1e-3), ("march11l_rope_table", "fp32", 1e-5)):
        other = json.loads(json.dumps(raw))
        other["model"][key] = value
        assert abs(runner.run_evaluation(artifact("a"), other, val_glob=VAL, max_tokens=2048).val_bpb - base) > moves, key


def test_cuda_layout_keeps_the_embedding_tables_in_bf16():
    prep = runner.prepare(artifact("a"), json.loads((FIX / "eval_standard.json").read_text()))
    model = families.get("march11l").build_model(prep.cfg, prep.state, torch.device("cpu")).reference_dtypes()
    dtypes = {n: p.dtype for n, p in model.named_parameters()}
    assert dtypes["tok_emb.weight"] == dtypes["bigram.embed.weight"] == dtypes["ve_shared.embed.weight"] == torch.bfloat16
    assert dtypes["blocks.0.mlp.fc.weight"] == dtypes["skip_weights"] == torch.float32
