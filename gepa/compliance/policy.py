"""Compliance policy: the rule-set version and every number the rules compare against.

Kept in one module so that a change of threshold is a visible, versioned change: bump
`RULESET_VERSION` whenever a number here or the meaning of a rule changes, because verdicts
record the version they were produced under.
"""

from __future__ import annotations

RULESET_VERSION = "rules-v2"

# Tracks, with the spellings seen in real submission.json files mapped onto canonical names.
TRACK_RECORD = "10min_16mb"
TRACK_NON_RECORD = "non_record_16mb"
TRACK_UNLIMITED = "non_record_unlimited_compute_16mb"
TRACKS = (TRACK_RECORD, TRACK_NON_RECORD, TRACK_UNLIMITED)
TRACK_ALIASES = {
    "10min_16mb": TRACK_RECORD,
    "track_10min_16mb": TRACK_RECORD,
    "record": TRACK_RECORD,
    "non_record_16mb": TRACK_NON_RECORD,
    "track_non_record_16mb": TRACK_NON_RECORD,
    "non_record": TRACK_NON_RECORD,
    "non_record_unlimited_compute_16mb": TRACK_UNLIMITED,
    "unlimited_compute": TRACK_UNLIMITED,
}

# Training and evaluation budgets of the record track, on the reference hardware (R3, R4).
TRAIN_BUDGET_S = 600.0
EVAL_BUDGET_S = 600.0
# Logged wall clocks overshoot the cap by the time of the last step and a timer check; a
# second of slack keeps such runs (e.g. 600.04 s) from warnings that say nothing useful.
TRAIN_SLACK_S = 1.0

REFERENCE_HARDWARE = "8xH100 SXM"
# Relative evaluation throughput versus the reference hardware (reference = 1.0). A time
# measured on hardware H is projected to the reference as `seconds * factor[H]`. Rough,
# deliberately conservative numbers (a faster machine has a factor above 1): the projection is
# a screen that decides between pass and "re-measure", never a disqualification on its own.
EVAL_SPEED_FACTORS = {
    "8xh100": 1.0,
    "8xh200": 1.3,
    "8xb200": 2.0,
    "1xh100": 1.0 / 8,
    "1xh200": 1.3 / 8,
    "2xh100": 2.0 / 8,
    "4xh100": 4.0 / 8,
    "8xa100": 0.45,
    "1xa100": 0.45 / 8,
    "1xrtx5090": 0.6 / 8,
    "1xl40s": 0.35 / 8,
    "cpu": 0.0005,
}
# A projection within this fraction of the budget is reported as warn, not fail: the table is
# approximate and the worker re-measures on reference hardware when it matters.
EVAL_PROJECTION_MARGIN = 0.15

# Reproduction: |measured - claimed| must be within max(FLOOR, K * std of the reported seeds)
# (compliance-rules.md check 25). This is the one tolerance policy: the CLI, the worker and the
# reviewer pages all read it from here.
REPRO_SIGMA_MULT = 3.0
REPRO_FLOOR_BPB = 0.0015

# Consistency of submission.json with its logs.
MEAN_MATCH_TOL = 1e-4  # canonical schema asks 1e-5; real files round the mean to 4-5 digits

# Significance of a record claim (R7 and maintainers' practice, compliance-rules.md section C).
RECORD_MARGIN_NATS = 0.005
P_THRESHOLD_RULE = 0.01
P_THRESHOLD_PRACTICE = 0.25
MIN_RECORD_SEEDS = 3

# Files a records folder must hold (R11). Logs are any *.log / *.txt below the folder.
REQUIRED_FILES = ("README.md", "submission.json", "train_gpt.py")
# Of those, the ones that only document the record: missing, they warn (the number can still be checked).
# submission.json holds the claim: without it the result is measured but never verified (a
# reproduction needs a claim), which the verdict says; so its absence alone does not fail either.
DOCUMENTATION_FILES = ("README.md", "submission.json")
# Evaluation config names, in the order they are looked for (`golfcheck submit` and the README use eval.json).
CONFIG_NAMES = ("eval.json", "eval_config.json", "config.json", "golfcheck.json")
# What a compressed model artifact is called in a records folder.
ARTIFACT_SUFFIXES = (".ptz", ".pt", ".bin.zst")
ARTIFACT_PREFIX = "final_model"
# Files a copy of an already-published record may lack without saying anything about the record.
HISTORICAL_OPTIONAL_FILES = ("README.md", "train_gpt.py")
LOG_SUFFIXES = (".log", ".txt")
NOT_LOGS = ("requirements.txt", "README.md")

# Hyperparameter keys that legitimately differ between seeds of one configuration.
PER_RUN_KEYS = (
    "seed", "run_id", "logfile", "log_file", "log_path", "local_rank", "rank", "is_main_process",
    "artifact_dir", "data_dir", "datasets_dir", "data_path", "tokenizer_path", "output_dir",
    "checkpoint_dir", "out_dir", "save_path", "model_path", "world_size", "distributed",
    "grad_accum_steps", "device", "logdir", "log_dir", "run_name", "wandb_run", "timestamp",
)

# Canonical validation token counts per tokenizer, as the challenge's own runs log them
# (`val_tokens: N` / `val_loader:shards ... tokens:N` in the published record logs at
# openai/parameter-golf 4908dc46): the full 50,000-document validation split.
CANONICAL_VAL_TOKENS = {
    "sp1024": 62_021_632,
    "sp4096": 45_514_752,
    "sp8192": 40_540_160,
    "sp8192-caseops": 47_851_520,
}
# Runs drop the tail that does not fill a whole (world x sequence) batch: counts this far below
# the canonical one are still the full set. A subset (e.g. 10,000 of 50,000 documents) is far lower.
VAL_TOKENS_CUT_SLACK = 32_768
# Training shard counts that fingerprint a train/val overlap (CaseOps prep with --val-docs=10000, X12).
LEAKY_TRAIN_SHARDS = (1499,)

# Parse errors that mean the code could never have run (nesting past CPython's limits), as
# opposed to syntax of a newer Python release.
HOSTILE_PARSE_ERRORS = ("RecursionError", "MemoryError", "too many nested", "too many levels of indentation",
                        "too many statically nested", "null bytes")

# How far an artifact may inflate while it is read (a decompression-bomb guard). One number for
# `golfcheck check` and the service (GOLFCHECK_MAX_DECOMPRESSED_BYTES defaults to it), so both
# reject the same artifacts with the same message.
MAX_ARTIFACT_DECOMPRESSED_BYTES = 256 * 2**20

# Static review: the largest decoded wrapper payload we accept (a decompression-bomb guard).
MAX_DECODED_SOURCE_BYTES = 8_000_000
MAX_WRAPPER_DEPTH = 4
