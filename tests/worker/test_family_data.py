"""Per-family validation data: GOLFCHECK_FAMILY_DATA parsing, and which shards and tokenizer the
worker gives each family (its own entry; the global sp1024 data only to families that tokenize
like the default; otherwise a refusal naming the family)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from api.core.settings import FamilyData, Settings, SettingsError
from gepa import families
from worker.pipeline import FamilyDataMissing, val_inputs

SHA = "ab" * 32


def test_family_data_parses_json_and_files(tmp_path: Path) -> None:
    doc = {"sp8192": {"val_glob": "/d/sp8192/fineweb_val_*.bin", "tokenizer": "/d/t.model", "val_sha256": SHA.upper()},
           "caseops": {"val_glob": "/d/c/fineweb_val_0*.bin", "sidecar_glob": "/d/c/fineweb_val_bytes_*.bin"}}
    s = Settings.from_env({"GOLFCHECK_FAMILY_DATA": json.dumps(doc)})
    assert s.data_for("sp8192") == FamilyData("/d/sp8192/fineweb_val_*.bin", "/d/t.model", "", SHA)
    assert s.data_for("caseops") == FamilyData("/d/c/fineweb_val_0*.bin", "", "/d/c/fineweb_val_bytes_*.bin", "")
    assert s.data_for("gepa") is None
    path = tmp_path / "families.json"
    path.write_text(json.dumps(doc))
    assert Settings.from_env({"GOLFCHECK_FAMILY_DATA": str(path)}).family_data == s.family_data
    assert Settings.from_env({}).family_data == ()


@pytest.mark.parametrize("value, needle", [
    ("[1, 2]", "JSON object"),
    ("{not json", "not valid JSON"),
    ("/no/such/file.json", "neither a JSON object nor a readable file"),
    ('{"SP 8192": {"val_glob": "x"}}', "not a family name"),
    ('{"sp8192": "x.bin"}', "must be an object"),
    ('{"sp8192": {"val_glob": "x", "vocab": "8192"}}', "unknown key(s) for sp8192: vocab"),
    ('{"sp8192": {"tokenizer": "t.model"}}', "sp8192 needs a val_glob"),
    ('{"sp8192": {"val_glob": 3}}', "must be a string"),
    ('{"sp8192": {"val_glob": "x", "val_sha256": "abc"}}', "64 hex digits"),
])
def test_family_data_errors_name_the_problem(value: str, needle: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"GOLFCHECK_FAMILY_DATA": value})
    assert "GOLFCHECK_FAMILY_DATA" in str(err.value) and needle in str(err.value)


def test_each_family_gets_its_own_data() -> None:
    gepa = families.get(families.DEFAULT_FAMILY)
    other = SimpleNamespace(name="wide", title="a family with its own vocabulary", tokenizer_asset="wide_8192.model",
                            val_asset=None)
    sampled = SimpleNamespace(name="sampled", title="another vocabulary, with a bundled sample",
                              tokenizer_asset="sampled.model", val_asset="sampled/fineweb_val_*.bin")
    plain = Settings.from_env({})
    got = val_inputs(plain, gepa)
    # None: the family's own bundled sample and tokenizer (gepa.runner's defaults)
    assert (got.val_glob, got.tokenizer, got.sidecar_glob, got.canonical_sha256) == (None, None, None, None)
    configured = Settings.from_env({"GOLFCHECK_VAL_GLOB": "/d/sp1024/fineweb_val_*.bin",
                                    "GOLFCHECK_TOKENIZER": "/d/sp1024.model"})
    got = val_inputs(configured, gepa)
    assert (got.val_glob, got.tokenizer) == ("/d/sp1024/fineweb_val_*.bin", "/d/sp1024.model")
    # The sp1024 shards are never handed to a family with another tokenizer.
    with pytest.raises(FamilyDataMissing) as err:
        val_inputs(configured, other)  # type: ignore[arg-type]
    assert "wide family" in str(err.value) and "GOLFCHECK_FAMILY_DATA" in str(err.value)
    # ... a family with its own bundled sample falls back to that, never to the sp1024 shards
    got = val_inputs(configured, sampled)  # type: ignore[arg-type]
    assert (got.val_glob, got.tokenizer) == (None, None)
    both = Settings.from_env({
        "GOLFCHECK_VAL_GLOB": "/d/sp1024/fineweb_val_*.bin",
        "GOLFCHECK_FAMILY_DATA": json.dumps({
            "wide": {"val_glob": "/d/wide/val_*.bin", "sidecar_glob": "/d/wide/bytes_*.bin", "val_sha256": SHA},
            "gepa": {"val_glob": "/d/canonical/fineweb_val_*.bin", "tokenizer": "/d/sp1024.model"}})})
    got = val_inputs(both, other)  # type: ignore[arg-type]
    assert (got.val_glob, got.tokenizer, got.sidecar_glob, got.canonical_sha256) == \
        ("/d/wide/val_*.bin", None, "/d/wide/bytes_*.bin", SHA)
    # an entry for the default family takes precedence over the global setting
    assert val_inputs(both, gepa).val_glob == "/d/canonical/fineweb_val_*.bin"
