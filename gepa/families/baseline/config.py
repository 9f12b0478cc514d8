"""The baseline family's evaluation config: sections `model`, `eval` and `baseline_lora_ttt`.

Keys are those of the fixture configs (`tests/data/baseline_small/eval_*.json`): the GEPA model
keys that mean the same thing here, `model.baseline_rope_tables` (which rotary table state the
scored run used, spec §4.6), `eval.mode` `standard` | `sliding` | `lora_ttt`, `eval.tail`,
`eval.baseline_val_batch_seqs` (sequences per standard-eval batch) and the `baseline_lora_ttt`
section. Missing keys take the NaiveBaseline record's values (9x512, T = 1024, bf16 rotary
tables); the LoRA defaults are the LoRA_TTT record's. Torch-free, so the API can read configs
without loading the evaluator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gepa.config import parse_sections, section_dict
from gepa.errors import ConfigError

FAMILY_NAME = "baseline"
MODES = ("standard", "sliding", "lora_ttt")
# fp32: an fp32-built model; bf16: NaiveBaseline/SlidingWindowEval (`.bfloat16()` left inv_freq,
# positions, angles and cos/sin in bf16); bf16_freqs: LoRA_TTT (bf16-rounded frequencies, rest fp32).
ROPE_TABLES = ("fp32", "bf16", "bf16_freqs")
# reference: SlidingWindowEval at HEAD (every window start below the stream end, trailing partial
# windows re-score the last `stride` targets); exact_once: the 10-layer sliding record (full
# windows only, the first scores everything, the others their last `stride` targets);
# last_stride: the MLP3x_QAT and MixedQuant records (full windows, every one scores only its last
# `stride`); gap_after_first: the Seq2048_FP16Emb record (first window whole, the next at
# seq_len - stride). A rule that leaves targets unscored is reported next to golfcheck's
# every-target-once score, never instead of it (gepa.families.baseline.windows).
TAILS = ("reference", "exact_once", "last_stride", "gap_after_first")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 1024
    num_layers: int = 9
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    mlp_hidden: int = 1024
    rope_base: float = 10000.0
    logit_softcap: float = 30.0
    tie_embeddings: bool = True
    baseline_rope_tables: str = "bf16"

    @property
    def head_dim(self) -> int:
        return self.model_dim // self.num_heads

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim


@dataclass(frozen=True)
class EvalSection:
    mode: str = "standard"
    seq_len: int = 1024
    stride: int = 64
    batch_seqs: int = 32
    tail: str = "reference"
    # The standard eval sums each batch's fp32 mean loss; the batch size moves the result at the
    # 1e-7 level only. 64 is what the records' 524,288-token validation batch gives at T = 1024.
    baseline_val_batch_seqs: int = 64


@dataclass(frozen=True)
class LoraTTTConfig:
    rank: int = 8
    lr: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-10
    chunk_tokens: int = 256
    context_tokens: int = 1024
    batch_docs: int = 64
    init_seed: int = 0


@dataclass(frozen=True)
class BaselineConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    eval: EvalSection = field(default_factory=EvalSection)
    baseline_lora_ttt: LoraTTTConfig = field(default_factory=LoraTTTConfig)
    family: str = FAMILY_NAME

    @property
    def mode(self) -> str:
        return self.eval.mode

    @property
    def lora(self) -> LoraTTTConfig:
        return self.baseline_lora_ttt

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, **{name: section_dict(getattr(self, name)) for name in SECTIONS}}


SECTIONS = {"model": ModelConfig, "eval": EvalSection, "baseline_lora_ttt": LoraTTTConfig}


def from_dict(raw: Any) -> BaselineConfig:
    """Build and validate (missing keys: the records' values; unknown keys are refused by name)."""
    cfg = BaselineConfig(**parse_sections(raw, SECTIONS, FAMILY_NAME))
    validate(cfg)
    return cfg


def _between(key: str, value: float, lo: float, hi: float, what: str = "") -> None:
    if not (lo <= value <= hi):
        raise ConfigError(f"{key} must be between {lo:g} and {hi:g}{what}, got {value!r}")


def validate(cfg: BaselineConfig) -> None:
    """Reject configs the evaluator cannot run, or could only run illegally."""
    m, e, t = cfg.model, cfg.eval, cfg.baseline_lora_ttt
    _between("model.vocab_size", m.vocab_size, 2, 65536, " (tokens are uint16)")
    for key in ("num_layers", "model_dim", "num_heads", "num_kv_heads", "mlp_hidden"):
        if getattr(m, key) < 1:
            raise ConfigError(f"model.{key} must be at least 1, got {getattr(m, key)}")
    if m.num_layers > 64 or m.model_dim > 8192 or m.mlp_hidden > 32768:
        raise ConfigError("model is far larger than a 16 MB artifact can hold; check num_layers, model_dim, mlp_hidden")
    if m.model_dim % m.num_heads:
        raise ConfigError(f"model.model_dim ({m.model_dim}) must be divisible by model.num_heads ({m.num_heads})")
    if m.num_heads % m.num_kv_heads:
        raise ConfigError(f"model.num_heads ({m.num_heads}) must be a multiple of model.num_kv_heads ({m.num_kv_heads})")
    if m.head_dim % 2:
        raise ConfigError(f"head dimension model_dim/num_heads = {m.head_dim} must be even for RoPE")
    if m.rope_base <= 0:
        raise ConfigError(f"model.rope_base must be positive, got {m.rope_base}")
    if m.logit_softcap <= 0:
        raise ConfigError(f"model.logit_softcap must be positive, got {m.logit_softcap}")
    if m.baseline_rope_tables not in ROPE_TABLES:
        raise ConfigError(f"model.baseline_rope_tables must be one of {', '.join(ROPE_TABLES)} (fp32: an fp32-built "
                          f"model; bf16: the NaiveBaseline/SlidingWindowEval runs; bf16_freqs: the LoRA_TTT run), "
                          f"got {m.baseline_rope_tables!r}")
    if e.mode not in MODES:
        raise ConfigError(f"eval.mode must be one of {', '.join(MODES)} for family {FAMILY_NAME}, got {e.mode!r}")
    if e.tail not in TAILS:
        raise ConfigError(f"eval.tail must be one of {', '.join(TAILS)}, got {e.tail!r}")
    _between("eval.seq_len", e.seq_len, 2, 65536)
    _between("eval.batch_seqs", e.batch_seqs, 1, 4096)
    _between("eval.baseline_val_batch_seqs", e.baseline_val_batch_seqs, 1, 4096)
    if e.stride < 1:
        raise ConfigError(f"eval.stride must be at least 1, got {e.stride}")
    if e.mode == "sliding" and e.stride > e.seq_len:
        raise ConfigError(f"eval.stride ({e.stride}) must not exceed eval.seq_len ({e.seq_len}) for sliding evaluation")
    if e.mode == "sliding" and e.tail == "gap_after_first" and e.stride >= e.seq_len:
        raise ConfigError(f"eval.stride ({e.stride}) must be below eval.seq_len ({e.seq_len}) for eval.tail "
                          "gap_after_first: its second window starts at seq_len - stride, so the record's loop "
                          "never advances when they are equal")
    _between("baseline_lora_ttt.rank", t.rank, 1, 4096)
    _between("baseline_lora_ttt.batch_docs", t.batch_docs, 1, 4096)
    _between("baseline_lora_ttt.chunk_tokens", t.chunk_tokens, 1, 1 << 20)
    _between("baseline_lora_ttt.context_tokens", t.context_tokens, 1, 65536)
    if t.context_tokens < t.chunk_tokens:
        raise ConfigError(f"baseline_lora_ttt.context_tokens ({t.context_tokens}) must be at least "
                          f"baseline_lora_ttt.chunk_tokens ({t.chunk_tokens}): a chunk is scored inside one window")
    _between("baseline_lora_ttt.lr", t.lr, 0.0, 1e3)
    for key in ("beta1", "beta2"):
        v = getattr(t, key)
        if not (0.0 <= v < 1.0):
            raise ConfigError(f"baseline_lora_ttt.{key} must be in [0, 1), got {v!r}")
    if not (0.0 < t.eps <= 1.0):
        raise ConfigError(f"baseline_lora_ttt.eps must be in (0, 1], got {t.eps!r}")
    _between("baseline_lora_ttt.init_seed", t.init_seed, 0, 2**63 - 1)


DEFAULT = BaselineConfig()
