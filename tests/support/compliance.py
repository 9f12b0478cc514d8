"""Helpers of the compliance tests (tests/gepa/compliance): the published records, the submitted-code
samples, and builders of a records folder's submission.json and training logs."""

from pathlib import Path

from tests.support.paths import RECORDS, TESTS

SAMPLES = TESTS / "gepa" / "compliance" / "samples"  # submitted-code samples: data, never imported


def all_record_folders() -> list[Path]:
    return sorted(p for p in RECORDS.glob("*/*") if p.is_dir())


LOG_TEMPLATE = """Hyperparameters:
  seed: {seed}
  ttt_enabled: True
  matrix_lr: 0.02
seed:{seed}
world_size:8 grad_accum_steps:1
train_loader:dataset:fineweb10B_sp8192 train_shards:80
val_loader:shards pattern=./data/datasets/fineweb10B_sp8192/fineweb_val_*.bin tokens:40540160
step:100/20000 val_loss:2.9 val_bpb:1.7 train_time:1000ms
stopping_early: wallclock_cap train_time:599500ms step:5000/20000
Serialized model: 135000000 bytes
Code size: {code} bytes
Serialized model int6+brotli: {model} bytes
Total submission size int6+brotli: {total} bytes
final_int6_roundtrip val_loss:2.55 val_bpb:1.1090 eval_time:7000ms
legal_ttt_exact val_loss:2.79 val_bpb:{bpb:.8f} eval_time:{eval_ms}ms
"""


def seed_log(seed, bpb, total=15_900_000, code=20_000, eval_ms=400_000, extra=""):
    return LOG_TEMPLATE.format(seed=seed, bpb=bpb, total=total, code=code, model=total - code, eval_ms=eval_ms) + extra


def good_submission(seeds=(("42", 1.08), ("314", 1.081), ("999", 1.082)), **over):
    sr = {s: {"val_bpb": b, "artifact_bytes": 15_900_000} for s, b in seeds}
    vals = [b for _, b in seeds]
    d = {"name": "Test", "author": "tester", "github_id": "tester", "date": "2026-04-01", "track": "10min_16mb",
         "val_bpb": sum(vals) / len(vals), "seeds": [int(s) for s, _ in seeds], "seed_results": sr, "bytes_total": 15_900_000}
    d.update(over)
    return d


def good_logs(seeds=(("42", 1.08), ("314", 1.081), ("999", 1.082)), **kw):
    return {f"train_seed{s}.log": seed_log(s, b, **kw) for s, b in seeds}
