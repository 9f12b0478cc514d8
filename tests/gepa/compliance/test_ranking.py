"""Per-track ranking from the real records, and the documented tie-break."""

from gepa.compliance import load_record, rank_entries

from tests.support.compliance import all_record_folders


def test_real_leaderboard_order():
    board = rank_entries(load_record(f) for f in all_record_folders())
    rec = board["10min_16mb"]
    assert rec[0].folder == "2026-04-27_SP8192_LQER_SparseGate_BOSSmearFix_9HpStack_1.0611"
    assert abs(rec[0].score - 1.06107587) < 1e-6
    scores = [e.score for e in rec if e.rank is not None]
    assert scores == sorted(scores)
    by = {e.folder: e for e in rec}
    assert abs(by["2026-03-17_NaiveBaseline"].score - 1.2243657) < 1e-9
    assert round(by["2026-03-20_10L_Int5MLP_MuonWD04_SWA50"].score, 4) == 1.1428
    # No submission.json: the score comes from its log's last final metric (a sliding-window eval).
    assert by["2026-03-19_int6_STE QAT_ MLP_bigram _U_Net"].score == 1.15977898
    # A record_support folder is shown within the row of the record it backs.
    assert "2026-04-29_SmearGateBOSFix_3Seed_1.06141" not in by
    assert by["2026-04-27_SmearGateBOSFix_PR1787Base_LQERAsym_PhasedTTT"].support == "2026-04-29_SmearGateBOSFix_3Seed_1.06141"
    assert "non_record_16mb" in board and "non_record_unlimited_compute_16mb" in board


def test_score_is_mean_over_seeds_and_ties_go_to_the_earlier_date(make_record):
    a = make_record({"name": "a", "author": "x", "date": "2026-04-02", "val_bpb": 1.05,  # best seed, not the mean
                     "seed_results": {"1": {"val_bpb": 1.05}, "2": {"val_bpb": 1.07}}}, name="2026-04-02_a")
    b = make_record({"name": "b", "author": "y", "date": "2026-04-01", "val_bpb": 1.06}, name="2026-04-01_b")
    c = make_record({"name": "c", "author": "z", "date": "2026-03-30", "val_bpb": 1.061}, name="2026-03-30_c")
    rows = rank_entries([load_record(p) for p in (a, b, c)])["10min_16mb"]
    assert [r.folder for r in rows] == ["2026-04-01_b", "2026-04-02_a", "2026-03-30_c"]
    assert [r.rank for r in rows] == [1, 1, 3]  # equal scores share a rank; earlier date listed first
