"""Log parsing across the formats of the real records."""
from gepa.compliance.logs import bpb_equal, parse_log, seed_from_name

from tests.support.compliance import seed_log
from tests.support.paths import RECORDS


def test_parses_sizes_times_seed_and_hyperparameters():
    lg = parse_log(seed_log("42", 1.0812345, total=15_950_000, code=16_000, eval_ms=300_000), "train_seed42.log")
    assert lg.seed == "42" and lg.total_bytes == 15_950_000 and lg.code_bytes == 16_000
    assert lg.train_time_s == 599.5
    assert lg.hyperparams["matrix_lr"] == "0.02"
    assert lg.find_bpb(1.0812345).label == "legal_ttt_exact"
    assert lg.eval_time_s == 300.0
    assert [m.final for m in lg.metrics] == [True, True]  # step lines are not metrics


def test_timestamped_lines_compressed_code_and_total_eval_time():
    text = ("1776143356.801 Code size (uncompressed): 139831 bytes\n"
            "1776143356.801 Code size (compressed): 28599 bytes\n"
            "1776143444.369 Total submission size quantized+brotli: 15996697 bytes\n"
            "1776143501.933 diagnostic quantized val_loss:2.79 val_bpb:1.08336093 eval_time:55851ms\n"
            "1776144156.999 quantized_ttt_phased val_loss:2.76 val_bpb:1.07216564 eval_time:500104ms\n"
            "1776144157.000 total_eval_time:500.1s\n")
    lg = parse_log(text, "logs/train0.txt")
    assert lg.code_bytes == 28599 and lg.code_bytes_raw == 139831
    assert lg.total_bytes == 15996697 and lg.total_eval_s == 500.1
    assert not lg.metrics[0].final and lg.metrics[1].final  # diagnostic is not the reported number


def test_equals_sign_metrics_and_one_line_config_dump():
    text = ("activation=relu2 adam_eps=1e-08 seed=7 train_seq_len=2048 warmdown=3000\n"
            "ttt_sliding:done val_loss=2.795171 val_bpb=1.082098 elapsed=293.2s\n")
    lg = parse_log(text, "x.txt")
    assert lg.hyperparams["train_seq_len"] == "2048" and lg.seed == "7"
    assert lg.metrics[0].val_bpb == 1.082098 and lg.metrics[0].eval_time_s == 293.2


def test_seed_from_file_names():
    assert seed_from_name("train_seed1337.log") == "1337"
    assert seed_from_name("log_10mins_seed-42.txt") == "42"
    assert seed_from_name("hybrid_1xh100_seq32768_s42.txt") == "42"
    assert seed_from_name("train_seed_2026.txt") == "2026"
    assert seed_from_name("train.log") is None


def test_bpb_equal_respects_rounding_of_either_side():
    assert bpb_equal("1.12387", 1.1239)
    assert bpb_equal("1.1239", 1.12387)
    assert not bpb_equal("1.12387", 1.1245)


def test_real_logs_parse():
    lg = parse_log((RECORDS / "track_10min_16mb/2026-04-06_SP8192_QK5_LegalTTT_1.0828/train_seed0.log").read_text(), "train_seed0.log")
    assert lg.find_bpb(1.08209788).label == "legal_ttt_exact"
    assert lg.code_bytes == 16719 and lg.total_bytes == 15991018
