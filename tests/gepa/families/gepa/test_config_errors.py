"""GEPA config mismatches name the key to change (issue 13, item 1), through the real CLI: each
contradiction of the artifact's tensors is refused with exit 2, what the tensors cannot show is
printed with the evaluation, and `inspect --json`'s config is accepted by `evaluate` as is."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_cli
from tests.support.service import GOLFCHECK, TINY_CONFIG
from tests.support.paths import REPO

MAX = "4096"


@pytest.fixture(scope="module")
def ve_art(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init 2-layer artifact with value embeddings on layer 1 (examples/tiny_eval.json)."""
    d = tmp_path_factory.mktemp("ve")
    subprocess.run([GOLFCHECK, "make-artifact", str(d / "m.ptz"), "--config", str(REPO / "examples" / "tiny_eval.json")],
                   check=True, capture_output=True, timeout=300)
    return d / "m.ptz"


def _with_model(tmp: Path, base: dict[str, Any], **model: Any) -> str:
    cfg = json.loads(json.dumps(base))
    cfg["model"].update(model)
    path = tmp / "cfg.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def _refused(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert out.returncode == 2, out
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr
    for n in needles:
        assert n in out.stderr, out.stderr


def test_wrong_num_heads_names_num_heads(tiny: dict[str, Any], tmp_path: Path) -> None:
    # 8 heads of a 64-wide model would first trip the RoPE rule; the message must be about heads.
    out = run_cli("evaluate", str(tiny["artifact"]), "--config", _with_model(tmp_path, TINY_CONFIG, num_heads=8),
                  "--max-tokens", MAX)
    _refused(out, "model.num_heads is 8", "set model.num_heads to 2", "blocks.0.attn.q_gain")


def test_seed_depth_against_a_small_artifact_names_num_layers(tiny: dict[str, Any], tmp_path: Path) -> None:
    out = run_cli("evaluate", str(tiny["artifact"]), "--config", _with_model(tmp_path, TINY_CONFIG, num_layers=11),
                  "--max-tokens", MAX)
    _refused(out, "model.num_layers is 11", "set model.num_layers to 1")


def test_no_config_infers_and_inspect_config_round_trips(tiny: dict[str, Any], tmp_path: Path) -> None:
    """A 1-block artifact without --config: the seed's freeze_blocks=2 would be illegal, so the
    default follows the model; inspect's config gives the same number when pasted back."""
    bare = run_cli("evaluate", str(tiny["artifact"]), "--max-tokens", MAX, "--json")
    assert bare.returncode == 0, bare.stderr
    insp = run_cli("inspect", str(tiny["artifact"]), "--json")
    assert insp.returncode == 0, insp.stderr
    cfg = json.loads(insp.stdout)["config"]
    assert cfg["model"]["num_layers"] == 1 and cfg["ttt"]["freeze_blocks"] <= 1
    (tmp_path / "insp.json").write_text(json.dumps(cfg))
    pasted = run_cli("evaluate", str(tiny["artifact"]), "--config", str(tmp_path / "insp.json"), "--max-tokens", MAX,
                     "--json")
    assert pasted.returncode == 0, pasted.stderr
    assert json.loads(pasted.stdout)["val_bpb"] == json.loads(bare.stdout)["val_bpb"]
    text = run_cli("evaluate", str(tiny["artifact"]), "--max-tokens", MAX)
    assert "none given: model inferred from the tensors" in text.stdout


def test_xsa_layers_beyond_the_depth_is_refused(tiny: dict[str, Any], tmp_path: Path) -> None:
    out = run_cli("evaluate", str(tiny["artifact"]), "--config", _with_model(tmp_path, TINY_CONFIG, xsa_layers=5),
                  "--max-tokens", MAX)
    _refused(out, "model.xsa_layers", "num_layers (1)")


def test_rope_dims_beyond_the_head_is_refused(tiny: dict[str, Any], tmp_path: Path) -> None:
    out = run_cli("evaluate", str(tiny["artifact"]), "--config", _with_model(tmp_path, TINY_CONFIG, rope_dims=64),
                  "--max-tokens", MAX)
    _refused(out, "model.rope_dims", "head dimension (32)")


def test_ve_layers_contradicting_the_tensors_are_refused(ve_art: Path, tmp_path: Path) -> None:
    base = json.loads((REPO / "examples" / "tiny_eval.json").read_text())
    out = run_cli("evaluate", str(ve_art), "--config", _with_model(tmp_path, base, ve_layers=[0, 1]), "--max-tokens", MAX)
    _refused(out, "model.ve_layers lists 2 layer(s)", "1 ve_layer_scales")
    out = run_cli("evaluate", str(ve_art), "--config", _with_model(tmp_path, base, ve_layers=[5]), "--max-tokens", MAX)
    _refused(out, "model.ve_layers names layer(s) [5]")
    out = run_cli("evaluate", str(ve_art), "--config", _with_model(tmp_path, base, ve_enabled=False),
                  "--max-tokens", MAX)
    _refused(out, "model.ve_enabled is False", "set model.ve_enabled to True")
    out = run_cli("evaluate", str(ve_art), "--config", _with_model(tmp_path, base, ve_dim=32), "--max-tokens", MAX)
    _refused(out, "model.ve_dim is 32", "set model.ve_dim to 16")


def test_keys_the_weights_cannot_show_are_printed(ve_art: Path, tmp_path: Path) -> None:
    base = json.loads((REPO / "examples" / "tiny_eval.json").read_text())
    out = run_cli("evaluate", str(ve_art), "--config", _with_model(tmp_path, base, ve_layers=[0], rope_dims=4),
                  "--max-tokens", MAX)
    assert out.returncode == 0, out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("unchecked"))
    assert re.search(r"model\.xsa_layers=1\b", line) and "model.ve_layers=[0]" in line and "model.rope_dims=4" in line
