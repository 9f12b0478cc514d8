"""The baseline family against its fixture: every `eval_*.json` through the public CLI reproduces the
number the records' own evaluation functions returned (`expected.json`, written by the public
reference code), detection and `inspect`, configs that contradict the tensors, fast = plain."""

from __future__ import annotations

import json

import pytest
import torch

from api.cli.main import main
from gepa import codec, families, runner
from gepa.families.baseline import config as bcfg
from gepa.families.baseline.flops import eval_flops, window_counts
from gepa.families.baseline.model import rope_tables
from gepa.families.baseline.windows import plan_exact_once, plan_reference
from tests.support.paths import REPO

ROOT = REPO
FIX = ROOT / "tests" / "data" / "baseline_small"
GEPA_FIX = ROOT / "tests" / "data" / "reference_small"
ART = FIX / "final_model.int8.ptz"
VAL = str(FIX / "fineweb_val_*.bin")
TOKENIZER = ROOT / "gepa" / "assets" / "fineweb_1024_bpe.model"
EXPECTED = json.loads((FIX / "expected.json").read_text())
CASES = sorted(p.stem.removeprefix("eval_") for p in FIX.glob("eval_*.json"))


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, err):
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("golfcheck: error: ") and "Traceback" not in err


def test_every_fixture_config_is_covered():
    assert len(CASES) == 10
    assert set(CASES) == {k for k in EXPECTED["results"] if not k.endswith(("_seconds", "_log"))}


@pytest.mark.parametrize("case", CASES)
def test_fixture_reproduces_the_reference_number(case, capsys):
    rc, out, err = cli(capsys, "evaluate", ART, "--config", FIX / f"eval_{case}.json", "--val", VAL,
                       "--tokenizer", TOKENIZER, "--json")
    assert rc == 0, err
    got = json.loads(out)
    loss, bpb = EXPECTED["results"][case]
    tol = 2e-4 if case.startswith("lora_ttt") else 1e-5
    assert got["family"] == "baseline"
    assert got["val_bpb"] == pytest.approx(bpb, abs=tol)
    assert got["val_loss"] == pytest.approx(loss, abs=tol)
    scored = {"standard": "scored_targets_standard", "sliding": "scored_targets_sliding",
              "lora_ttt": "ttt_scored_targets"}[got["mode"]]
    assert got["tokens_scored"] == EXPECTED["val"][scored]


def test_detection_inspect_and_the_printed_config_round_trip(capsys, tmp_path):
    rc, out, err = cli(capsys, "inspect", ART, "--json")
    assert rc == 0, err
    info = json.loads(out)
    assert info["family"] == "baseline" and info["format"] == "int8_clean_per_row_v1" and info["compression"] == "zlib"
    tensors = {t["name"]: t for t in info["tensors"]}
    assert tensors["tok_emb.weight"]["scheme"] == "int8_per_row" and tensors["tok_emb.weight"]["dtype"] == "bfloat16"
    assert tensors["blocks.0.attn.c_q.weight"]["scheme"] == "fp16_passthrough"
    assert tensors["blocks.0.attn.c_q.weight"]["dtype"] == "float32"
    model = info["config"]["model"]
    want = EXPECTED["model_config"]
    for key in ("vocab_size", "num_layers", "model_dim", "num_heads", "num_kv_heads", "mlp_hidden", "tie_embeddings"):
        assert model[key] == want[key], key
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(info["config"]))
    rc, out, err = cli(capsys, "evaluate", ART, "--config", path, "--val", VAL, "--max-tokens", "2048", "--json")
    assert rc == 0, err
    assert json.loads(out)["family"] == "baseline"
    rc, out, err = cli(capsys, "evaluate", ART, "--val", VAL, "--max-tokens", "2048")
    assert rc == 0, err
    assert "family         baseline (detected from the artifact)" in out


@pytest.mark.parametrize("folder", sorted(p.name for p in (ROOT / "tests" / "data").glob("*_small")))
def test_every_fixture_artifact_is_claimed_by_its_own_family_only(folder):
    path = ROOT / "tests" / "data" / folder
    art = codec.read_artifact(next(iter(sorted(path.glob("final_model.*.ptz")))))
    family = next(json.loads(c.read_text()).get("family", "gepa") for c in sorted(path.glob("eval_*.json")))
    assert [f.name for f in families.registry().values() if f.sniff(art)] == [family]
    assert families.detect(art).name == family


def test_baseline_does_not_claim_other_layouts_with_the_same_tensor_names():
    base = codec.read_artifact(ART)
    # The same tensors in the GPTQ {w, m} layout (SP8192/CaseOps lineages) or under the GEPA tag.
    gptq = codec.Artifact(kind="gptq", compression="brotli", compressed_bytes=1, decompressed_bytes=1,
                          container={"w": dict(base.container["passthrough"]), "m": {}})
    mixed = codec.Artifact(kind="clean", compression="zstd", compressed_bytes=1, decompressed_bytes=1,
                           container=dict(base.container, __quant_format__="mixed_clean_per_row_v1"))
    for art in (gptq, mixed):
        assert not families.get("baseline").sniff(art)
        assert not families.get("gepa").sniff(art)


@pytest.mark.parametrize("artifact,config,family,needle", [
    (GEPA_FIX / "final_model.int6.ptz", FIX / "eval_standard.json", None, "not the baseline's int8_clean_per_row_v1"),
    (ART, GEPA_FIX / "eval_standard.json", "gepa", "the artifact's tensors say"),
    (ART, GEPA_FIX / "eval_standard.json", None, "unknown key(s) in config section model: bigram_buckets"),
    (ART, GEPA_FIX / "eval_standard.json", None, "the artifact is a baseline-family model, detected from its content"),
])
def test_a_config_for_another_family_is_bad_input(artifact, config, family, needle, capsys, tmp_path):
    raw = json.loads(config.read_text())
    if family:
        raw["family"] = family
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(raw))
    rc, out, err = cli(capsys, "evaluate", artifact, "--config", path, "--val", VAL)
    assert_one_line_error(rc, err)
    assert needle in err and out == ""


@pytest.mark.parametrize("key,value,needle", [
    ("num_kv_heads", 3, "set model.num_kv_heads to 2"),
    ("num_heads", 4, "set model.num_heads to 6"),
    ("num_layers", 9, "set model.num_layers to 3"),
    ("mlp_hidden", 1024, "set model.mlp_hidden to 576"),
    ("vocab_size", 2048, "set model.vocab_size to 1024"),
    ("tie_embeddings", False, "set model.tie_embeddings to True"),
    ("rope_dims", 16, "rope_dims"),
    ("baseline_rope_tables", "bf16freq", "model.baseline_rope_tables"),
])
def test_a_config_that_contradicts_the_tensors_names_the_key(key, value, needle, capsys, tmp_path):
    cfg = json.loads((FIX / "eval_standard.json").read_text())
    cfg["model"][key] = value
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(cfg))
    rc, out, err = cli(capsys, "evaluate", ART, "--config", path, "--val", VAL)
    assert_one_line_error(rc, err)
    assert needle in err


@pytest.mark.parametrize("section,key,value,needle", [
    ("eval", "mode", "ttt", "eval.mode"),
    ("eval", "tail", "last", "eval.tail"),
    ("baseline_lora_ttt", "context_tokens", 16, "baseline_lora_ttt.context_tokens"),
    ("baseline_lora_ttt", "beta2", 1.0, "baseline_lora_ttt.beta2"),
    ("ttt", "lr", 0.1, "unknown config section(s) ttt"),
])
def test_bad_baseline_configs_exit_2(section, key, value, needle, capsys, tmp_path):
    cfg = json.loads((FIX / "eval_lora_ttt.json").read_text())
    cfg.setdefault(section, {})[key] = value
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(cfg))
    rc, out, err = cli(capsys, "evaluate", ART, "--config", path, "--val", VAL)
    assert_one_line_error(rc, err)
    assert needle in err


def _run(case: str, impl: str, **overrides):
    raw = json.loads((FIX / f"eval_{case}.json").read_text())
    for section, values in overrides.items():
        raw[section].update(values)
    return runner.run_evaluation(ART, raw, val_glob=VAL, impl=impl)


@pytest.mark.parametrize("case,tail", [("sliding", "reference"), ("sliding_rope_bf16", "exact_once")])
def test_sliding_fast_path_equals_plain(case, tail):
    fast, plain = _run(case, "fast", eval={"tail": tail}), _run(case, "plain", eval={"tail": tail})
    assert fast.tokens_scored == plain.tokens_scored
    assert fast.val_bpb == pytest.approx(plain.val_bpb, abs=1e-5)
    assert fast.val_loss == pytest.approx(plain.val_loss, abs=1e-5)


def test_lora_ttt_fast_path_equals_plain():
    # A short document batch of 3 and context shorter than the documents exercise every branch.
    raw = json.loads((FIX / "eval_lora_ttt.json").read_text())
    raw["baseline_lora_ttt"].update(batch_docs=4, context_tokens=64)
    prep = runner.prepare(ART, raw)
    fast = runner.run_prepared(prep, val_glob=VAL, impl="fast", max_tokens=9000)
    plain = runner.run_prepared(prep, val_glob=VAL, impl="plain", max_tokens=9000)
    assert fast.tokens_scored == plain.tokens_scored == 9000  # the stream starts with BOS
    assert fast.val_bpb == pytest.approx(plain.val_bpb, abs=1e-5)
    assert [e for e in fast.events] == [e for e in plain.events]


def test_exact_once_scores_every_target_once_and_reference_repeats_the_tail():
    total, seq_len, stride = 22528, 128, 64
    ref, once = plan_reference(total, seq_len, stride), plan_exact_once(total, seq_len, stride)
    assert ref.scored_targets() == total + seq_len - stride
    assert once.scored_targets() == total
    covered = torch.zeros(total, dtype=torch.int64)
    for s, n, f in zip(once.starts.tolist(), once.lengths.tolist(), once.score_from.tolist()):
        covered[s + f: s + n] += 1
    assert bool((covered == 1).all())


@pytest.mark.parametrize("tail", ["reference", "exact_once"])
def test_window_counts_match_the_plans(tail):
    for total in (1, 5, 63, 64, 65, 127, 128, 129, 1000, 4096, 4097):
        for seq_len, stride in ((128, 64), (128, 48), (64, 64), (256, 7)):
            plan = (plan_reference if tail == "reference" else plan_exact_once)(total, seq_len, stride)
            assert window_counts(tail, total, seq_len, stride) == (len(plan), plan.scored_targets())


def test_bf16_rope_tables_collide_above_256_and_bf16_freqs_do_not():
    cos, _ = rope_tables(64, 10000.0, 600, "bf16", torch.device("cpu"))
    assert torch.equal(cos[257], cos[256]) and not torch.equal(cos[255], cos[256])
    cos, _ = rope_tables(64, 10000.0, 600, "bf16_freqs", torch.device("cpu"))
    assert not torch.equal(cos[257], cos[256])
    fp32, _ = rope_tables(64, 10000.0, 600, "fp32", torch.device("cpu"))
    assert fp32.dtype == cos.dtype == torch.float32 and not torch.equal(fp32, cos)


def test_flop_model_orders_the_procedures():
    cfg = {m: bcfg.from_dict({"eval": {"mode": m}}) for m in bcfg.MODES}
    n = 62_021_632
    std, sw, lt = (eval_flops(cfg[m], n).total for m in ("standard", "sliding", "lora_ttt"))
    assert 0 < std < sw and std < lt
    assert eval_flops(cfg["sliding"], n, plain=True).total > sw
    # Standard eval of the 9x512 model: about 2 * 17M parameters' worth of FLOPs per token.
    assert 1.5 * 2 * 17e6 * n > std > 0.8 * 2 * 17e6 * n
