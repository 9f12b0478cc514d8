"""submission.json normalisation, including the variants found in the real records."""
from pathlib import Path

from gepa.compliance.submission import canonical_track, normalise

from tests.support.paths import RECORDS
from gepa.compliance import load_record

REC = Path("/x/track_10min_16mb/2026-04-01_Name")
NON = Path("/x/track_non_record_16mb/2026-04-01_Name")


def test_track_spellings_are_canonicalised():
    assert canonical_track("non-record-16mb") == "non_record_16mb"
    assert canonical_track("non_record_16mb") == "non_record_16mb"
    assert canonical_track("non-record-unlimited-compute-16mb") == "non_record_unlimited_compute_16mb"
    assert canonical_track("10min_16mb") == "10min_16mb"
    assert canonical_track("bogus") is None


def test_missing_track_is_inferred_from_the_folder():
    s = normalise({"name": "a", "author": "b", "val_bpb": 1.2}, NON)
    assert s.track == "non_record_16mb"
    assert any("inferred" in n for n in s.notes)
    assert s.problems == []


def test_track_disagreeing_with_folder_is_a_problem():
    s = normalise({"name": "a", "author": "b", "val_bpb": 1.2, "track": "10min_16mb"}, NON)
    assert any("disagrees" in p for p in s.problems)


def test_seeds_as_list_with_seed_results():
    s = normalise({"name": "a", "author": "b", "val_bpb": 1.0, "seeds": [42, 7],
                   "seed_results": {"42": {"val_bpb": 1.0, "artifact_bytes": 10}, "7": {"val_bpb": 1.0, "artifact_bytes": 12}}}, REC)
    assert s.seeds == ["42", "7"]
    assert s.seed_results["7"].artifact_bytes == 12
    assert s.bytes_total == 12  # recomputed as the max over seeds


def test_seeds_as_dict_moved_into_seed_results():
    s = normalise({"name": "a", "author": "b", "val_bpb": 1.05, "seeds": {"1": {"val_bpb": 1.0}, "2": {"val_bpb": 1.1}}}, REC)
    assert s.seeds == ["1", "2"]
    assert abs(s.seed_mean_bpb - 1.05) < 1e-12
    assert any("dict" in n for n in s.notes)


def test_single_seed_field_and_alternative_size_names():
    s = normalise({"val_bpb": 1.1556, "seed": 1337, "artifact_size_bytes": 15878809, "code_bytes": 5}, REC)
    assert s.seeds == ["1337"]
    assert s.bytes_total == 15878809 and s.bytes_code == 5
    assert "name is missing" in s.problems and "author is missing" in s.problems


def test_date_and_p_value_variants():
    s = normalise({"name": "a", "author": "b", "val_bpb": 1.0, "date": "2026-03-18T14:56:29Z", "p_value": "<0.001"}, REC)
    assert s.date == "2026-03-18" and s.p_value == 0.001
    s2 = normalise({"name": "a", "author": "b", "val_bpb": 1.0, "date": None}, REC)
    assert s2.date == "2026-04-01"  # from the folder name


def test_missing_val_bpb_falls_back_to_seed_mean_or_is_a_problem():
    s = normalise({"name": "a", "author": "b", "seed_results": {"1": {"val_bpb": 1.0}, "2": {"val_bpb": 1.2}}}, REC)
    assert abs(s.val_bpb - 1.1) < 1e-12
    s2 = normalise({"name": "a", "author": "b"}, REC)
    assert "val_bpb is missing or not a number" in s2.problems


def test_not_an_object():
    s = normalise([1, 2], REC)
    assert s.problems == ["submission.json is not a JSON object"]


def test_real_variants_load(tmp_path):
    tern = load_record(RECORDS / "track_10min_16mb" / "2026-03-24_74M_Ternary_UNet_FP8_10L_8192BPE_YaRN_NeoMuon")
    assert tern.submission.json_file == "submission_ternary.json" and tern.val_bpb == 1.1565
    thwu = load_record(RECORDS / "track_10min_16mb" / "2026-03-20_10L_Int5MLP_MuonWD04_SWA50")
    assert thwu.val_bpb == 1.14276  # val_loss held the bpb; the logs confirm it
    assert any("val_loss holds" in p for p in thwu.submission.problems)
    unl = load_record(RECORDS / "track_non_record_16mb" / "2026-03-18_Quasi10Bfrom50B_SP1024_9x512_KV4_4h_pgut3")
    assert unl.track == "non_record_unlimited_compute_16mb"
    support = load_record(RECORDS / "track_10min_16mb" / "2026-04-29_SmearGateBOSFix_3Seed_1.06141")
    assert support.submission.submission_type == "record_support" and support.seeds == ["42", "314", "1234"]
