"""The march11l family's evaluation config: sections `model`, `eval` and `ttt`.

The March 11-layer records and the GEPA seed share their hyperparameters, so the sections extend
the gepa family's with that lineage's own key, `model.march11l_activation` (`relu2` for the
03-20 to 03-22 records, `leaky_relu2` — LeakyReLU(0.5) squared — from 03-23 on), and the record
defaults: the final evaluation is sliding s=64 at T=2048 (rows 23, 24, 26-29); row 25's legal
score-first TTT is SGD (momentum 0.9, lr 0.002, cosine across chunks of 32,768 tokens), 3
epochs, nothing frozen, late-QAT fake quantisation on. Validation is the gepa family's plus what
this lineage's reference code cannot run (other activations, AdamW or a constant TTT LR).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from gepa.config import SectionedConfig, parse_sections
from gepa.errors import ConfigError
from gepa.families.gepa import config as gcfg

FAMILY = "march11l"
MODES = gcfg.MODES
ACTIVATIONS = ("relu2", "leaky_relu2")
ROPE_TABLES = ("bf16", "bf16_freqs", "fp32")


@dataclass(frozen=True)
class ModelConfig(gcfg.ModelConfig):
    march11l_activation: str = "relu2"
    # The rotary table for windows up to rope_train_seq_len (above it the reference recomputes the
    # frequencies in fp32). The records' `.bfloat16()` converts the inv_freq buffer: on their GPUs
    # positions, angles and cos/sin are then bf16 (`bf16`); a reference model cast back to fp32
    # keeps only the bf16-rounded frequencies (`bf16_freqs`, the CPU fixtures); `fp32` is neither.
    march11l_rope_table: str = "bf16"


@dataclass(frozen=True)
class EvalSection(gcfg.EvalSection):
    mode: str = "sliding"


@dataclass(frozen=True)
class TTTConfig(gcfg.TTTConfig):
    epochs: int = 3
    freeze_blocks: int = 0


_SECTIONS = {"model": ModelConfig, "eval": EvalSection, "ttt": TTTConfig}


@dataclass(frozen=True)
class EvalConfig(SectionedConfig):
    model: ModelConfig = field(default_factory=ModelConfig)
    eval: EvalSection = field(default_factory=EvalSection)
    ttt: TTTConfig = field(default_factory=TTTConfig)
    family: str = FAMILY

    sections: ClassVar[dict[str, type]] = _SECTIONS


def from_dict(raw: Any) -> EvalConfig:
    cfg = EvalConfig(**parse_sections(raw, _SECTIONS, FAMILY))
    validate(cfg)
    return cfg


def validate(cfg: EvalConfig) -> None:
    gcfg.validate(cfg)  # type: ignore[arg-type]  # same sections, same rules
    if cfg.model.march11l_activation not in ACTIVATIONS:
        raise ConfigError(f"model.march11l_activation must be one of {', '.join(ACTIVATIONS)}, "
                          f"got {cfg.model.march11l_activation!r}")
    if cfg.model.march11l_rope_table not in ROPE_TABLES:
        raise ConfigError(f"model.march11l_rope_table must be one of {', '.join(ROPE_TABLES)}, "
                          f"got {cfg.model.march11l_rope_table!r}")
    if cfg.mode == "ttt":
        if cfg.ttt.optimizer != "sgd":
            raise ConfigError("ttt.optimizer must be 'sgd': the March records' legal TTT (row 25) uses SGD with momentum")
        if cfg.ttt.lr_schedule != "cosine_across_chunks":
            raise ConfigError("ttt.lr_schedule must be 'cosine_across_chunks', the March records' schedule")


DEFAULT = EvalConfig()
