"""The sp8192 family's evaluation config (PR #1394 lineage): sections `model`, `eval` and `ttt`.

Keys are the fixtures' (`eval_*.json`): the generic names where they apply plus the `sp8192_`
prefixed ones of the family spec §10. Missing keys take the 04-09 record's run (R2: 11 layers,
loop 3-5 twice, GPT-J parallel residuals from block 7, QK gain 5.25, score-first SGD TTT). Torch
free, so the service can parse and estimate without loading the model code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from gepa.config import SectionedConfig, parse_sections
from gepa.errors import ConfigError

MODES = ("standard", "sliding", "ttt")
ROPE_TABLES = ("eager_bf16", "inductor_bf16", "fp32")
COMPRESSORS = ("brotli", "lzma")
LR_SCHEDULES = ("cosine_across_chunks", "constant")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 8192
    num_layers: int = 11
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    rope_dims: int = 16
    rope_base: float = 10000.0
    ln_scale: bool = True
    logit_softcap: float = 30.0
    tie_embeddings: bool = True
    qk_gain_init: float = 5.25  # training-time init only; the artifact holds the learned q_gain
    sp8192_mlp_mult: float = 4.0
    sp8192_xsa_last_n: int = 11
    sp8192_num_loops: int = 2
    sp8192_loop_start: int = 3
    sp8192_loop_end: int = 5
    sp8192_parallel_residual_start: int = 7  # -1 (or >= num_layers): every block sequential
    sp8192_skip_gates: bool = True
    # TRAIN_SEQ_LEN of the run: windows longer than this switch the rotary table to NTK scaling.
    sp8192_rotary_train_seq_len: int = 2048
    # eager_bf16: the table eager PyTorch builds from the bf16 buffers (the fixtures);
    # inductor_bf16: what torch.compile builds (bf16 positions, fp32 product); fp32: bf16-valued
    # inv_freq with fp32 positions, products, cos and sin (see gepa/families/sp8192/rotary.py).
    sp8192_rope_table: str = "eager_bf16"
    sp8192_compressor: str = "brotli"

    @property
    def head_dim(self) -> int:
        return self.model_dim // self.num_heads

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def hidden(self) -> int:
        return int(self.sp8192_mlp_mult * self.model_dim)

    def layer_order(self) -> list[int]:
        """The looped virtual order of physical blocks (evaluation always loops)."""
        L, s, e = self.num_layers, self.sp8192_loop_start, self.sp8192_loop_end
        if self.sp8192_num_loops <= 0:
            return list(range(L))
        seg = list(range(s, e + 1))
        return list(range(s)) + seg * (self.sp8192_num_loops + 1) + list(range(e + 1, L))

    def split(self) -> tuple[list[int], list[int]]:
        """(encoder entries, decoder entries): the first half of the order, then the rest."""
        order = self.layer_order()
        n = len(order) // 2
        return order[:n], order[n:]

    @property
    def num_skips(self) -> int:
        enc, dec = self.split()
        return min(len(enc), len(dec))


@dataclass(frozen=True)
class EvalSection:
    mode: str = "ttt"
    seq_len: int = 2048
    stride: int = 64
    batch_seqs: int = 32
    # This family's sliding windows partition the targets (spec §6.2): only exact_once applies.
    tail: str = "exact_once"
    # Sequences per standard-eval batch: the reference sums fp32 batch means (spec §6.1).
    sp8192_standard_batch_seqs: int = 32


@dataclass(frozen=True)
class TTTConfig:
    optimizer: str = "sgd"
    lr: float = 0.005
    epochs: int = 3
    momentum: float = 0.9
    weight_decay: float = 0.0
    chunk_tokens: int = 32768
    freeze_blocks: int = 0
    batch_seqs: int = 32
    grad_clip: float = 1.0
    lr_schedule: str = "cosine_across_chunks"
    fake_quant_int6: bool = False
    sp8192_ttt_trainable: str = "all"


_SECTIONS = {"model": ModelConfig, "eval": EvalSection, "ttt": TTTConfig}


@dataclass(frozen=True)
class EvalConfig(SectionedConfig):
    model: ModelConfig = field(default_factory=ModelConfig)
    eval: EvalSection = field(default_factory=EvalSection)
    ttt: TTTConfig = field(default_factory=TTTConfig)
    family: str = "sp8192"

    sections: ClassVar[dict[str, type]] = _SECTIONS


def from_dict(raw: Any) -> EvalConfig:
    """Build and validate a config from parsed JSON (missing keys take the R2 run's values)."""
    cfg = EvalConfig(**parse_sections(raw, _SECTIONS, "sp8192"))
    validate(cfg)
    return cfg


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"config key {key} must be one of {', '.join(allowed)}, got {value!r}")


def validate(cfg: EvalConfig) -> None:
    """Reject configs the evaluator cannot run, or could only run illegally; messages name the key."""
    m, e = cfg.model, cfg.eval
    if m.vocab_size < 2 or m.vocab_size > 65536:
        raise ConfigError(f"config key model.vocab_size must be between 2 and 65536 (tokens are uint16), "
                          f"got {m.vocab_size}")
    for key in ("num_layers", "model_dim", "num_heads", "num_kv_heads"):
        if getattr(m, key) < 1:
            raise ConfigError(f"config key model.{key} must be at least 1, got {getattr(m, key)}")
    if m.num_layers > 64 or m.model_dim > 8192 or not (0 < m.sp8192_mlp_mult <= 16) or m.hidden < 1:
        raise ConfigError("model is far larger than a 16 MB artifact can hold; check model.num_layers, "
                          "model.model_dim and model.sp8192_mlp_mult (0 < mult <= 16)")
    if m.model_dim % m.num_heads:
        raise ConfigError(f"config key model.model_dim ({m.model_dim}) must be divisible by model.num_heads "
                          f"({m.num_heads})")
    if m.num_heads % m.num_kv_heads:
        raise ConfigError(f"config key model.num_heads ({m.num_heads}) must be a multiple of model.num_kv_heads "
                          f"({m.num_kv_heads})")
    if m.rope_dims < 0 or m.rope_dims > m.head_dim or m.rope_dims % 2:
        raise ConfigError(f"config key model.rope_dims must be an even number from 0 to the head dimension "
                          f"({m.head_dim}), got {m.rope_dims}")
    if m.rope_base <= 0 or m.sp8192_rotary_train_seq_len < 1:
        raise ConfigError("config keys model.rope_base must be positive and model.sp8192_rotary_train_seq_len "
                          "at least 1")
    if m.logit_softcap <= 0:
        raise ConfigError(f"config key model.logit_softcap must be positive, got {m.logit_softcap}")
    if not m.tie_embeddings:
        raise ConfigError("config key model.tie_embeddings must be true: every sp8192 record ties the head to "
                          "tok_emb (an untied head is not part of this family)")
    if not 0 <= m.sp8192_xsa_last_n <= m.num_layers:
        raise ConfigError(f"config key model.sp8192_xsa_last_n must be between 0 and model.num_layers "
                          f"({m.num_layers}), got {m.sp8192_xsa_last_n}")
    if not 0 <= m.sp8192_num_loops <= 8:
        raise ConfigError(f"config key model.sp8192_num_loops must be between 0 and 8, got {m.sp8192_num_loops}")
    if m.sp8192_num_loops and not 0 <= m.sp8192_loop_start <= m.sp8192_loop_end < m.num_layers:
        raise ConfigError(f"config keys model.sp8192_loop_start ({m.sp8192_loop_start}) and model.sp8192_loop_end "
                          f"({m.sp8192_loop_end}) must satisfy 0 <= start <= end < model.num_layers ({m.num_layers})")
    if not -1 <= m.sp8192_parallel_residual_start <= 64:
        # A start at or past num_layers is legal in the reference (R2's default 7 on a shallow model)
        # and, like -1, leaves every block sequential.
        raise ConfigError(f"config key model.sp8192_parallel_residual_start must be -1 (none) or a block index "
                          f"(0-64), got {m.sp8192_parallel_residual_start}")
    _choice("model.sp8192_rope_table", m.sp8192_rope_table, ROPE_TABLES)
    _choice("model.sp8192_compressor", m.sp8192_compressor, COMPRESSORS)
    _choice("eval.mode", e.mode, MODES)
    if e.tail != "exact_once":
        raise ConfigError(f"config key eval.tail must be 'exact_once' for the sp8192 family (its sliding windows "
                          f"score every target once), got {e.tail!r}")
    if e.seq_len < 2 or e.seq_len > 65536:
        raise ConfigError(f"config key eval.seq_len must be between 2 and 65536, got {e.seq_len}")
    for key in ("batch_seqs", "sp8192_standard_batch_seqs"):
        if not 1 <= getattr(e, key) <= 4096:
            raise ConfigError(f"config key eval.{key} must be between 1 and 4096, got {getattr(e, key)}")
    if not 1 <= e.stride <= e.seq_len:
        raise ConfigError(f"config key eval.stride must be between 1 and eval.seq_len ({e.seq_len}), got {e.stride}")
    if e.mode == "ttt":
        _validate_ttt(cfg)


def _validate_ttt(cfg: EvalConfig) -> None:
    m, e, t = cfg.model, cfg.eval, cfg.ttt
    if t.optimizer != "sgd":
        raise ConfigError(f"config key ttt.optimizer must be 'sgd' for the sp8192 family (its records' TTT is "
                          f"SGD with momentum), got {t.optimizer!r}")
    _choice("ttt.lr_schedule", t.lr_schedule, LR_SCHEDULES)
    if t.sp8192_ttt_trainable != "all":
        raise ConfigError(f"config key ttt.sp8192_ttt_trainable must be 'all' (the records train every "
                          f"parameter; use ttt.freeze_blocks to freeze leading blocks), got {t.sp8192_ttt_trainable!r}")
    if t.fake_quant_int6:
        raise ConfigError("config key ttt.fake_quant_int6 must be false: the sp8192 records' TTT trains the "
                          "dequantised weights directly")
    if e.stride >= e.seq_len:
        raise ConfigError(f"config key eval.stride ({e.stride}) must be smaller than eval.seq_len ({e.seq_len}) "
                          "for score-first TTT")
    if t.chunk_tokens < 1 or t.chunk_tokens % e.stride or t.chunk_tokens < e.seq_len:
        raise ConfigError(f"config key ttt.chunk_tokens ({t.chunk_tokens}) must be a multiple of eval.stride "
                          f"({e.stride}) and at least eval.seq_len ({e.seq_len}); otherwise a window could be "
                          "scored after training on its targets")
    if not 0 <= t.freeze_blocks <= m.num_layers:
        raise ConfigError(f"config key ttt.freeze_blocks must be between 0 and model.num_layers ({m.num_layers}), "
                          f"got {t.freeze_blocks}")
    if not 0 <= t.epochs <= 1000:
        raise ConfigError(f"config key ttt.epochs must be between 0 and 1000, got {t.epochs}")
    if not 1 <= t.batch_seqs <= 4096:
        raise ConfigError(f"config key ttt.batch_seqs must be between 1 and 4096, got {t.batch_seqs}")
    if t.lr < 0 or t.grad_clip < 0 or t.weight_decay < 0 or not 0 <= t.momentum < 1:
        raise ConfigError("config keys ttt.lr, ttt.grad_clip and ttt.weight_decay must be >= 0 and ttt.momentum "
                          "in [0, 1)")


DEFAULT = EvalConfig()
