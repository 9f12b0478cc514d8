"""The GEPA family's evaluation config: sections `model`, `eval` and `ttt`.

Missing keys take the values of the seed submission's run (11L GEPA, legal score-first TTT with
SGD). Unknown keys, wrong types and combinations the evaluator cannot run legally are rejected
with a `ConfigError` whose message names the key and says what to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from gepa.config import load_json, loads_json, SectionedConfig, parse_sections
from gepa.errors import ConfigError

MODES = ("standard", "sliding", "ttt")
OPTIMIZERS = ("sgd", "adamw")
LR_SCHEDULES = ("cosine_across_chunks", "constant")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 1024
    num_layers: int = 11
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    mlp_hidden: int = 1536
    bigram_buckets: int = 2048
    bigram_embed_dim: int = 128
    rope_dims: int = 16
    rope_base: float = 10000.0
    rope_train_seq_len: int = 1024
    ln_scale: bool = True
    xsa_layers: int = 4
    ve_enabled: bool = True
    ve_dim: int = 128
    ve_layers: tuple[int, ...] = (9, 10)
    logit_softcap: float = 30.0
    qk_gain_init: float = 1.5
    tie_embeddings: bool = True

    @property
    def head_dim(self) -> int:
        return self.model_dim // self.num_heads

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def hidden(self) -> int:
        return self.mlp_hidden if self.mlp_hidden > 0 else 3 * self.model_dim


@dataclass(frozen=True)
class EvalSection:
    mode: str = "ttt"
    seq_len: int = 2048
    stride: int = 64
    batch_seqs: int = 32
    # The reference scores the final `stride` targets once per trailing partial window;
    # `exact_once` drops those repeats so every target counts exactly once.
    tail: str = "reference"


@dataclass(frozen=True)
class TTTConfig:
    optimizer: str = "sgd"
    lr: float = 0.002
    epochs: int = 10
    momentum: float = 0.9
    weight_decay: float = 0.01
    chunk_tokens: int = 32768
    freeze_blocks: int = 2
    batch_seqs: int = 32
    grad_clip: float = 1.0
    lr_schedule: str = "cosine_across_chunks"
    fake_quant_int6: bool = True


_SECTIONS = {"model": ModelConfig, "eval": EvalSection, "ttt": TTTConfig}


@dataclass(frozen=True)
class EvalConfig(SectionedConfig):
    model: ModelConfig = field(default_factory=ModelConfig)
    eval: EvalSection = field(default_factory=EvalSection)
    ttt: TTTConfig = field(default_factory=TTTConfig)
    family: str = "gepa"

    sections: ClassVar[dict[str, type]] = _SECTIONS


def from_dict(raw: Any) -> EvalConfig:
    """Build and validate a config from parsed JSON (missing keys take the seed run's values)."""
    cfg = EvalConfig(**parse_sections(raw, _SECTIONS, "gepa"))
    validate(cfg)
    return cfg


def loads(text: str | bytes) -> EvalConfig:
    return from_dict(loads_json(text))


def load(path: str | Path) -> EvalConfig:
    return from_dict(load_json(path))


def validate(cfg: EvalConfig) -> None:
    """Reject configs the evaluator cannot run, or could only run illegally."""
    m, e, t = cfg.model, cfg.eval, cfg.ttt
    if m.vocab_size < 2 or m.vocab_size > 65536:
        raise ConfigError(f"model.vocab_size must be between 2 and 65536 (tokens are uint16), got {m.vocab_size}")
    for key in ("num_layers", "model_dim", "num_heads", "num_kv_heads"):
        if getattr(m, key) < 1:
            raise ConfigError(f"model.{key} must be at least 1, got {getattr(m, key)}")
    if m.num_layers > 64 or m.model_dim > 8192 or m.hidden > 32768:
        raise ConfigError("model is far larger than a 16 MB artifact can hold; check num_layers, model_dim, mlp_hidden")
    if m.model_dim % m.num_heads:
        raise ConfigError(f"model.model_dim ({m.model_dim}) must be divisible by model.num_heads ({m.num_heads})")
    if m.num_heads % m.num_kv_heads:
        raise ConfigError(f"model.num_heads ({m.num_heads}) must be a multiple of model.num_kv_heads ({m.num_kv_heads})")
    if m.head_dim % 2:
        raise ConfigError(f"head dimension model_dim/num_heads = {m.head_dim} must be even for RoPE")
    if m.rope_dims < 0 or m.rope_dims > m.head_dim or m.rope_dims % 2 or m.rope_dims == 2:
        raise ConfigError(
            f"model.rope_dims must be 0 or an even number from 4 to the head dimension ({m.head_dim}), got {m.rope_dims}"
        )
    if m.rope_base <= 0 or m.rope_train_seq_len < 1:
        raise ConfigError("model.rope_base must be positive and model.rope_train_seq_len at least 1")
    if m.bigram_buckets == 1 or m.bigram_buckets < 0:
        raise ConfigError(f"model.bigram_buckets must be 0 (off) or at least 2, got {m.bigram_buckets}")
    if m.bigram_buckets and m.bigram_embed_dim < 1:
        raise ConfigError("model.bigram_embed_dim must be at least 1 when bigram buckets are on")
    if m.xsa_layers < 0 or m.xsa_layers > m.num_layers:
        raise ConfigError(f"model.xsa_layers must be between 0 and num_layers ({m.num_layers}), got {m.xsa_layers}")
    if m.ve_enabled and m.ve_dim < 1:
        raise ConfigError("model.ve_dim must be at least 1 when value embeddings are on")
    if any(i < 0 for i in m.ve_layers):
        raise ConfigError(f"model.ve_layers must hold block indices >= 0, got {list(m.ve_layers)}")
    if m.logit_softcap <= 0:
        raise ConfigError(f"model.logit_softcap must be positive, got {m.logit_softcap}")
    if e.mode not in MODES:
        raise ConfigError(f"eval.mode must be one of {', '.join(MODES)}, got {e.mode!r}")
    if e.tail not in ("reference", "exact_once"):
        raise ConfigError(f"eval.tail must be 'reference' or 'exact_once', got {e.tail!r}")
    if e.seq_len < 2 or e.seq_len > 65536:
        raise ConfigError(f"eval.seq_len must be between 2 and 65536, got {e.seq_len}")
    if e.batch_seqs < 1 or e.batch_seqs > 4096:
        raise ConfigError(f"eval.batch_seqs must be between 1 and 4096, got {e.batch_seqs}")
    if e.stride < 1:
        raise ConfigError(f"eval.stride must be at least 1, got {e.stride}")
    if e.mode in ("sliding", "ttt") and e.stride > e.seq_len:
        raise ConfigError(
            f"eval.stride ({e.stride}) must not exceed eval.seq_len ({e.seq_len}) for {e.mode} evaluation"
        )
    if e.mode == "ttt":
        if e.stride >= e.seq_len:
            raise ConfigError(
                f"eval.stride ({e.stride}) must be smaller than eval.seq_len ({e.seq_len}) for score-first TTT"
            )
        if t.optimizer not in OPTIMIZERS:
            raise ConfigError(f"ttt.optimizer must be one of {', '.join(OPTIMIZERS)}, got {t.optimizer!r}")
        if t.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"ttt.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {t.lr_schedule!r}")
        if t.chunk_tokens < 1 or t.chunk_tokens % e.stride or t.chunk_tokens % e.seq_len:
            raise ConfigError(
                f"ttt.chunk_tokens ({t.chunk_tokens}) must be a positive multiple of eval.stride ({e.stride}) "
                f"and of eval.seq_len ({e.seq_len}); otherwise a window could be scored after training on its targets"
            )
        if t.freeze_blocks < 0 or t.freeze_blocks > m.num_layers:
            raise ConfigError(
                f"ttt.freeze_blocks ({t.freeze_blocks}) must be between 0 and model.num_layers ({m.num_layers})"
            )
        if t.epochs < 0 or t.epochs > 1000:
            raise ConfigError(f"ttt.epochs must be between 0 and 1000, got {t.epochs}")
        if t.batch_seqs < 1 or t.batch_seqs > 4096:
            raise ConfigError(f"ttt.batch_seqs must be between 1 and 4096, got {t.batch_seqs}")
        if t.lr < 0 or t.grad_clip < 0 or t.weight_decay < 0 or not (0 <= t.momentum < 1):
            raise ConfigError("ttt.lr, ttt.grad_clip and ttt.weight_decay must be >= 0 and ttt.momentum in [0, 1)")


DEFAULT = EvalConfig()
