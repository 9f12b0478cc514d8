"""Parse training logs into the numbers the consistency rules compare.

Logs come from many forks of the reference script, so the parser looks for line shapes rather
than exact formats: metric lines (`<label> val_loss:X val_bpb:Y`, `=` or `:`), size lines
(`Code size...`, `Serialized model...`, `Total submission size...`), timing lines
(`stopping_early ... train_time`, `total_eval_time`, `eval_time:...ms`), the seed, and the
hyperparameter dump (an indented `Hyperparameters:` block, a one-line `k=v` dump, or `k:v`
header lines before training starts), and the data facts the data rules need: the validation
token count (`val_tokens: N`, `val_loader:shards ... tokens:N`), the tokenizer, the training
shard count and file pattern, and post-training calibration times (GPTQ Hessians, AR
self-generated calibration) that count against the training budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from gepa.compliance import policy
from gepa.lines import split_lines

_TS_PREFIX = re.compile(r"^\d{9,}(?:\.\d+)?\s+")
_BPB = re.compile(r"val_bpb\s*[:=]\s*([-+]?\d+(?:\.\d+)?)")
_LOSS = re.compile(r"val_loss\s*[:=]\s*([-+]?\d+(?:\.\d+)?)")
_EVAL_MS = re.compile(r"(?:eval_time|time)\s*[:=]\s*(\d+(?:\.\d+)?)ms")
_EVAL_S = re.compile(r"(?:eval_time|elapsed)\s*[:=]\s*(\d+(?:\.\d+)?)s\b")
_TOTAL_EVAL = re.compile(r"total_eval_time\s*[:=]\s*(\d+(?:\.\d+)?)\s*s")
_TRAIN_TIME = re.compile(r"train_time\s*[:=]\s*(\d+(?:\.\d+)?)\s*ms")
_CODE = re.compile(r"^Code size(?:\s*\((\w+)\))?\s*:\s*(\d+)\s*bytes")
_TOTAL = re.compile(r"^Total submission size([^:]*):\s*(\d+)\s*bytes")
_MODEL = re.compile(r"^Serialized model([^:]*):\s*(\d+)\s*bytes")
_SEED_LINE = re.compile(r"^\s*seed\s*[:=]\s*(\d+)\s*$")
_SEED_FILE = re.compile(r"(?:seed[_-]?|_s)(\d+)(?=\D|$)", re.I)
_KV_COLON = re.compile(r"^([a-z_][a-z0-9_]*):(\S+)$")
_KV_EQ = re.compile(r"^([a-z_][a-z0-9_]*)=(\S*)$")
_WORLD = re.compile(r"world_size\s*[:=]\s*(\d+)")
_GPU = re.compile(r"NVIDIA\s+(H100|H200|B200|A100|L40S|GeForce RTX 5090|RTX 5090)", re.I)
_NOT_FINAL = ("pre-quant", "pre_quant", "prequant", "diagnostic", "warmup")
_VAL_TOKENS = re.compile(r"^(?:val_tokens\s*[:=]\s*(\d+)|val_loader:.*\btokens\s*[:=]\s*(\d+))")
_TRAIN_SHARDS = re.compile(r"\btrain_shards\s*[:=]\s*(\d+)")
_TRAIN_FILES = re.compile(r"^train_files\s*[:=]\s*(\S+)")
_TRAIN_DATASET = re.compile(r"\btrain_loader:dataset:(\S+)")
_VAL_FILES = re.compile(r"^val_files\s*[:=]\s*(\S+)|val_loader:shards pattern=(\S+)")
# Calibration steps that read data after the training loop stopped (ruling X6d: they count).
_CALIB = re.compile(r"^(?:GPTQ:collected .* in|gptq:calibrated .* in)\s+(\d+(?:\.\d+)?)s\b", re.I)
# Self-generated (autoregressive) calibration reads no data (ruling X6c): reported, not counted.
_AR_CALIB = re.compile(r"^gptq:(?:generated .* in|done in)\s+(\d+(?:\.\d+)?)s\b", re.I)
_POST_TOTAL = re.compile(r"wallclock:post_\w+\s+total_elapsed\s*[:=]\s*(\d+(?:\.\d+)?)s")
_TOKENIZER_PATH = re.compile(r"tokenizer_path\s*[:=]\s*(\S+)")
_BYTE_TOKENIZER = re.compile(r"tokenizer_kind\s*=\s*byte")


@dataclass(frozen=True)
class Metric:
    label: str
    val_bpb: float
    bpb_text: str
    val_loss: float | None
    line: int
    eval_time_s: float | None
    final: bool


@dataclass
class ParsedLog:
    file: str
    seed: str | None = None
    file_seed: str | None = None  # the seed the file name claims, if any
    metrics: list[Metric] = field(default_factory=list)
    code_bytes: int | None = None  # the counted code size (compressed wrapper if logged)
    code_bytes_raw: int | None = None  # the uncompressed source size, if logged separately
    code_line: int | None = None
    total_bytes: int | None = None
    total_line: int | None = None
    model_bytes: int | None = None
    train_time_s: float | None = None
    train_time_line: int | None = None
    total_eval_s: float | None = None
    total_eval_line: int | None = None
    hyperparams: dict[str, str] = field(default_factory=dict)
    world_size: int | None = None
    gpu: str | None = None
    # Data facts (the data rules compare them with the canonical validation set).
    val_tokens: int | None = None
    val_tokens_line: int | None = None
    val_files: str | None = None
    tokenizer_path: str | None = None
    byte_tokenizer: bool = False
    train_shards: int | None = None
    train_shards_line: int | None = None
    train_files: str | None = None
    train_files_line: int | None = None
    train_dataset: str | None = None    # `train_loader:dataset:fineweb10B_sp1024`: the folder trained on
    train_dataset_line: int | None = None
    calib_s: float = 0.0                # post-training calibration seconds found in the log
    calib_lines: list[int] = field(default_factory=list)
    ar_calib_s: float = 0.0             # self-generated calibration seconds (not counted)
    ar_seen: bool = False
    post_total_s: float | None = None   # a logged wall clock up to the end of calibration
    post_total_line: int | None = None

    @property
    def vocab_size(self) -> int | None:
        v = self.hyperparams.get("vocab_size")
        return int(v) if v is not None and v.isdigit() else None

    @property
    def train_total_s(self) -> float | None:
        """Training wall clock including post-training calibration (GPTQ Hessians, AR calibration)."""
        if self.train_time_s is None and self.post_total_s is None:
            return None
        loop = (self.train_time_s or 0.0) + self.calib_s
        # A logged end-of-calibration clock includes self-generated calibration: use it only without.
        return max(loop, 0.0 if self.ar_seen else (self.post_total_s or 0.0))

    @property
    def final_metrics(self) -> list[Metric]:
        return [m for m in self.metrics if m.final]

    def find_bpb(self, value: float) -> Metric | None:
        """The last final metric line that reports `value` (up to the rounding of either side)."""
        hits = [m for m in self.final_metrics if bpb_equal(m.bpb_text, value)]
        return hits[-1] if hits else None

    @property
    def eval_time_s(self) -> float | None:
        if self.total_eval_s is not None:
            return self.total_eval_s
        finals = [m for m in self.final_metrics if m.eval_time_s is not None]
        return finals[-1].eval_time_s if finals else None


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def bpb_equal(logged_text: str, claimed: float) -> bool:
    """Equal up to the coarser of the two roundings (a json 1.1239 matches a log 1.12387)."""
    claimed_text = repr(float(claimed))
    dec = min(_decimals(logged_text), _decimals(claimed_text))
    return abs(float(logged_text) - float(claimed)) <= 0.5 * 10.0 ** (-dec) + 1e-9


def seed_from_name(name: str) -> str | None:
    m = _SEED_FILE.search(Path(name).stem)
    return m.group(1) if m else None


def parse_log(text: str, file: str) -> ParsedLog:
    out = ParsedLog(file=file)
    in_hp_block = False
    training_started = False
    for no, raw_line in enumerate(split_lines(text), start=1):
        line = _TS_PREFIX.sub("", raw_line.rstrip())
        stripped = line.strip()
        if in_hp_block:
            if raw_line[:1] in (" ", "\t") and ":" in stripped:
                k, _, v = stripped.partition(":")
                out.hyperparams[k.strip().lower()] = v.strip()
                _data_facts(stripped, no, out)
                continue
            in_hp_block = False
        if stripped == "Hyperparameters:":
            in_hp_block = True
            continue
        if stripped.startswith("step:") or stripped.startswith("warmup_step"):
            training_started = True
            m = _TRAIN_TIME.search(stripped)
            if m:
                out.train_time_s, out.train_time_line = float(m.group(1)) / 1000.0, no
            continue
        if out.seed is None:
            m = _SEED_LINE.match(stripped)
            if m:
                out.seed = m.group(1)
        bpb = _BPB.search(stripped)
        if bpb:
            training_started = True  # header dumps end before the first metric line
            label = stripped[: stripped.find("val_")].strip() or stripped[:40]
            loss = _LOSS.search(stripped)
            ev = _EVAL_MS.search(stripped)
            ev_s = float(ev.group(1)) / 1000.0 if ev else None
            if ev_s is None:
                ev2 = _EVAL_S.search(stripped)
                ev_s = float(ev2.group(1)) if ev2 else None
            low = label.lower()
            out.metrics.append(Metric(
                label=label, val_bpb=float(bpb.group(1)), bpb_text=bpb.group(1),
                val_loss=float(loss.group(1)) if loss else None, line=no, eval_time_s=ev_s,
                final=not any(t in low for t in _NOT_FINAL),
            ))
            continue
        _data_facts(stripped, no, out)
        if "stopping_early" in stripped:
            m = _TRAIN_TIME.search(stripped.replace("train_time: ", "train_time:"))
            if m:
                out.train_time_s, out.train_time_line = float(m.group(1)) / 1000.0, no
        m = _TOTAL_EVAL.search(stripped)
        if m:
            out.total_eval_s, out.total_eval_line = float(m.group(1)), no
        m = _CODE.match(stripped)
        if m:
            kind = (m.group(1) or "").lower()
            if kind == "uncompressed":
                out.code_bytes_raw = int(m.group(2))
                if out.code_bytes is None:
                    out.code_bytes, out.code_line = int(m.group(2)), no
            else:
                out.code_bytes, out.code_line = int(m.group(2)), no
        m = _TOTAL.match(stripped)
        if m:
            out.total_bytes, out.total_line = int(m.group(2)), no
        m = _MODEL.match(stripped)
        if m:
            out.model_bytes = int(m.group(2))
        m = _WORLD.search(stripped)
        if m and out.world_size is None:
            out.world_size = int(m.group(1))
        m = _GPU.search(stripped)
        if m and out.gpu is None:
            out.gpu = m.group(1).lower().replace("geforce ", "").replace(" ", "")
        if not training_started:
            _header_pairs(stripped, out.hyperparams)
    out.file_seed = seed_from_name(file)
    if out.seed is None:
        out.seed = out.hyperparams.get("seed") or out.file_seed
    return out


def _data_facts(line: str, no: int, out: ParsedLog) -> None:
    """Validation/training data and calibration facts of one log line (first occurrence wins)."""
    m = _VAL_TOKENS.search(line)
    if m and out.val_tokens is None:
        out.val_tokens, out.val_tokens_line = int(m.group(1) or m.group(2)), no
    m = _TRAIN_SHARDS.search(line)
    if m and out.train_shards is None:
        out.train_shards, out.train_shards_line = int(m.group(1)), no
    m = _TRAIN_FILES.search(line)
    if m and out.train_files is None:
        out.train_files, out.train_files_line = m.group(1), no
    m = _TRAIN_DATASET.search(line)
    if m and out.train_dataset is None:
        out.train_dataset, out.train_dataset_line = m.group(1), no
    m = _VAL_FILES.search(line)
    if m and out.val_files is None:
        out.val_files = m.group(1) or m.group(2)
    m = _TOKENIZER_PATH.search(line)
    if m and out.tokenizer_path is None:
        out.tokenizer_path = m.group(1)
    if _BYTE_TOKENIZER.search(line):
        out.byte_tokenizer = True
    if "autoregressive" in line.lower() or "ar self-gen" in line.lower():
        out.ar_seen = True
    m = _AR_CALIB.search(line)
    if m and out.ar_seen:
        out.ar_calib_s = max(out.ar_calib_s, float(m.group(1)))
        return
    m = _CALIB.search(line)
    if m and no not in out.calib_lines:
        out.calib_s += float(m.group(1))
        out.calib_lines.append(no)
    m = _POST_TOTAL.search(line)
    if m:
        out.post_total_s, out.post_total_line = float(m.group(1)), no


def _header_pairs(line: str, into: dict[str, str]) -> None:
    """Collect `k:v` / `k=v` pairs from pre-training header lines (one-line config dumps)."""
    tokens = line.split()
    eq = [_KV_EQ.match(t) for t in tokens]
    if len(tokens) >= 4 and sum(1 for m in eq if m) >= 0.8 * len(tokens):
        for m in eq:
            if m:
                into.setdefault(m.group(1), m.group(2))
        return
    pairs = [m for m in (_KV_COLON.match(t) for t in tokens) if m and len(m.group(1)) >= 3 and not m.group(2).startswith("//")]
    for m in pairs:
        if not re.fullmatch(r"[\d.]+m?s", m.group(2)):  # timings are not configuration
            into.setdefault(m.group(1), m.group(2))


def is_log_file(path: Path) -> bool:
    return path.suffix in policy.LOG_SUFFIXES and path.name not in policy.NOT_LOGS


def parse_logs(folder: Path) -> list[ParsedLog]:
    logs = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and is_log_file(p):
            try:
                text = p.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            logs.append(parse_log(text, str(p.relative_to(folder))))
    return logs
