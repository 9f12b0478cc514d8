"""The CaseOps family's evaluation config: sections `model`, `eval` and `caseops_ttt` (torch-free).

Keys are the ones the public fixtures' `eval_*.json` use (the contract): the shared model keys
where the meaning is identical, `caseops_`-prefixed keys for what is new to this family. Missing
keys take the 2026-04-19 record run's values. Notes on two keys kept for compatibility:
- `eval.caseops_bytes`: "sidecar" (the reference's wording: bytes come from a per-token sidecar)
  or "canonical". Either way golfcheck scores with the canonical counts it recomputes from the
  documents' text; a submitted sidecar is only compared and reported (result.extra).
- `eval.caseops_sidecar`: the file name of a submitted sidecar next to the validation shards
  (a bare name, never a path), compared when present.
- `model.caseops_compressor`: informational; the container is recognised from its bytes and
  its two forms (brotli, per-group lrzip) hold the same tensors, so it is never checked.
LoRA-only TTT is `mode: caseops_phased_ttt` with `caseops_ttt.prefix_docs: 0`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from gepa.config import SectionedConfig, parse_sections
from gepa.errors import ConfigError

MODES = ("standard", "caseops_phased_ttt")
LANES = ("mean", "attn", "mlp")
ATTN_GATES = ("dense", "sparse", "none")
SMEAR_GATES = ("none", "bos_fix")
COMPRESSORS = ("brotli+bshf", "brotli", "pergroup")
BYTES = ("sidecar", "canonical")
OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 8192
    num_layers: int = 11
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    mlp_hidden: int = 2048
    rope_dims: int = 16
    rope_base: float = 10000.0
    ln_scale: bool = True
    xsa_layers: int = 11
    logit_softcap: float = 30.0
    qk_gain_init: float = 5.0
    tie_embeddings: bool = True
    caseops_num_loops: int = 2
    caseops_loop_start: int = 3
    caseops_loop_end: int = 5
    caseops_parallel_start_layer: int = 8
    caseops_parallel_final_lane: str = "mean"
    caseops_skip_gates: bool = True
    caseops_attn_gate: str = "dense"
    caseops_gate_window: int = 12
    caseops_sparse_gate_scale: float | None = None
    caseops_smear_gate: str = "none"
    caseops_compressor: str = "brotli+bshf"

    @property
    def head_dim(self) -> int:
        return self.model_dim // self.num_heads

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def slots(self) -> tuple[list[int], list[int]]:
        """(encoder, decoder) physical layer per slot; evaluation always runs the loops."""
        L = self.num_layers
        if self.caseops_num_loops > 0:
            s, e = self.caseops_loop_start, self.caseops_loop_end
            order = list(range(s)) + list(range(s, e + 1)) * (self.caseops_num_loops + 1) + list(range(e + 1, L))
        else:
            order = list(range(L))
        half = len(order) // 2
        return order[:half], order[half:]

    @property
    def num_skips(self) -> int:
        enc, dec = self.slots
        return min(len(enc), len(dec))

    @property
    def sparse_scale(self) -> float:
        return 1.0 if self.caseops_sparse_gate_scale is None else self.caseops_sparse_gate_scale


@dataclass(frozen=True)
class EvalSection:
    mode: str = "caseops_phased_ttt"
    seq_len: int = 2048
    caseops_val_batch_tokens: int = 524288
    caseops_world_size: int = 8
    caseops_bytes: str = "sidecar"
    caseops_sidecar: str | None = "fineweb_val_bytes_000000.bin"
    caseops_bos_id: int = 1

    @property
    def local_batch_seqs(self) -> int:
        """Sequences per standard-eval batch on one rank (VAL_BATCH_TOKENS / 8 tokens for any world size)."""
        grad_accum = max(1, 8 // self.caseops_world_size)
        return max(1, self.caseops_val_batch_tokens // (self.caseops_world_size * grad_accum) // self.seq_len)


@dataclass(frozen=True)
class TTTConfig:
    optimizer: str = "adam"
    lora_lr: float = 1e-4
    lora_rank: int = 96
    beta1: float = 0.0
    beta2: float = 0.999
    adam_eps: float = 1e-10
    weight_decay: float = 0.5
    grad_steps: int = 1
    chunk_size: int = 48
    eval_seq_len: int = 2048
    batch_docs: int = 64
    k_lora: bool = True
    mlp_lora: bool = True
    o_lora: bool = True
    lora_alpha: float | None = None
    warm_start_a: bool = False
    prefix_docs: int = 2000
    num_phases: int = 3
    global_lr: float = 1e-3
    global_momentum: float = 0.9
    global_epochs: int = 1
    global_chunk_tokens: int = 32768
    global_batch_seqs: int = 32
    global_grad_clip: float = 1.0
    global_warmup_chunks: int = 0
    global_warmup_start_lr: float = 0.0
    global_respect_doc_boundaries: bool = True
    torch_seed: int | None = 0

    @property
    def lora_scale(self) -> float:
        return 1.0 if self.lora_alpha is None else self.lora_alpha / self.lora_rank


_SECTIONS = {"model": ModelConfig, "eval": EvalSection, "caseops_ttt": TTTConfig}


@dataclass(frozen=True)
class EvalConfig(SectionedConfig):
    model: ModelConfig = field(default_factory=ModelConfig)
    eval: EvalSection = field(default_factory=EvalSection)
    caseops_ttt: TTTConfig = field(default_factory=TTTConfig)
    family: str = "caseops"

    sections: ClassVar[dict[str, type]] = _SECTIONS


def from_dict(raw: Any) -> EvalConfig:
    cfg = EvalConfig(**parse_sections(raw, _SECTIONS, "caseops"))
    validate(cfg)
    return cfg


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {value!r}")


def _at_least(key: str, value: float, lo: float) -> None:
    if value < lo:
        raise ConfigError(f"{key} must be at least {lo}, got {value}")


def validate(cfg: EvalConfig) -> None:
    """Reject configs the evaluator cannot run, or could only run illegally, naming the key."""
    m, e, t = cfg.model, cfg.eval, cfg.caseops_ttt
    if not 2 <= m.vocab_size <= 65536:
        raise ConfigError(f"model.vocab_size must be between 2 and 65536 (tokens are uint16), got {m.vocab_size}")
    for key in ("num_layers", "model_dim", "num_heads", "num_kv_heads", "mlp_hidden"):
        _at_least(f"model.{key}", getattr(m, key), 1)
    if m.num_layers > 64 or m.model_dim > 8192 or m.mlp_hidden > 32768:
        raise ConfigError("model is far larger than a 16 MB artifact can hold; check num_layers, model_dim, mlp_hidden")
    if m.model_dim % m.num_heads:
        raise ConfigError(f"model.model_dim ({m.model_dim}) must be divisible by model.num_heads ({m.num_heads})")
    if m.num_heads % m.num_kv_heads:
        raise ConfigError(f"model.num_heads ({m.num_heads}) must be a multiple of model.num_kv_heads ({m.num_kv_heads})")
    if m.rope_dims < 0 or m.rope_dims > m.head_dim or m.rope_dims % 2:
        raise ConfigError(f"model.rope_dims must be an even number from 0 to the head dimension ({m.head_dim}), "
                          f"got {m.rope_dims}")
    if m.rope_base <= 0 or m.logit_softcap <= 0:
        raise ConfigError("model.rope_base and model.logit_softcap must be positive")
    if not 0 <= m.xsa_layers <= m.num_layers:
        raise ConfigError(f"model.xsa_layers must be between 0 and num_layers ({m.num_layers}), got {m.xsa_layers}")
    if not m.tie_embeddings:
        raise ConfigError("model.tie_embeddings must be true: every CaseOps record ties the output head to tok_emb")
    if m.caseops_num_loops < 0 or m.caseops_num_loops > 16:
        raise ConfigError(f"model.caseops_num_loops must be between 0 and 16, got {m.caseops_num_loops}")
    if m.caseops_num_loops > 0 and not 0 <= m.caseops_loop_start <= m.caseops_loop_end < m.num_layers:
        raise ConfigError(f"model.caseops_loop_start ({m.caseops_loop_start}) and model.caseops_loop_end "
                          f"({m.caseops_loop_end}) must satisfy 0 <= start <= end < num_layers ({m.num_layers})")
    if not 0 <= m.caseops_parallel_start_layer <= m.num_layers:
        raise ConfigError(f"model.caseops_parallel_start_layer must be between 0 (off) and num_layers "
                          f"({m.num_layers}), got {m.caseops_parallel_start_layer}")
    _choice("model.caseops_parallel_final_lane", m.caseops_parallel_final_lane, LANES)
    _choice("model.caseops_attn_gate", m.caseops_attn_gate, ATTN_GATES)
    _choice("model.caseops_smear_gate", m.caseops_smear_gate, SMEAR_GATES)
    _choice("model.caseops_compressor", m.caseops_compressor, COMPRESSORS)
    if not 1 <= m.caseops_gate_window <= m.model_dim:
        raise ConfigError(f"model.caseops_gate_window must be between 1 and model_dim ({m.model_dim}), "
                          f"got {m.caseops_gate_window}")
    _choice("eval.mode", e.mode, MODES)
    _choice("eval.caseops_bytes", e.caseops_bytes, BYTES)
    if not 2 <= e.seq_len <= 65536:
        raise ConfigError(f"eval.seq_len must be between 2 and 65536, got {e.seq_len}")
    if not 1 <= e.caseops_world_size <= 8 or 8 % e.caseops_world_size:
        raise ConfigError(f"eval.caseops_world_size must divide 8 (the reference's grad_accum_steps = 8 // world "
                          f"size), got {e.caseops_world_size}")
    if e.caseops_val_batch_tokens < e.seq_len * 8 or e.caseops_val_batch_tokens > 1 << 26:
        raise ConfigError(f"eval.caseops_val_batch_tokens must hold at least one sequence per rank and micro-step "
                          f"(>= 8 * seq_len = {8 * e.seq_len}), got {e.caseops_val_batch_tokens}")
    if not 0 <= e.caseops_bos_id < m.vocab_size:
        raise ConfigError(f"eval.caseops_bos_id must be a token id below vocab_size, got {e.caseops_bos_id}")
    if e.caseops_sidecar is not None and (not e.caseops_sidecar or "/" in e.caseops_sidecar
                                          or "\\" in e.caseops_sidecar or e.caseops_sidecar.startswith(".")):
        raise ConfigError("eval.caseops_sidecar must be a bare file name next to the validation shards "
                          f"(no directories), got {e.caseops_sidecar!r}")
    if e.mode != "caseops_phased_ttt":
        return
    _choice("caseops_ttt.optimizer", t.optimizer, OPTIMIZERS)
    for key in ("lora_rank", "chunk_size", "eval_seq_len", "batch_docs", "grad_steps", "num_phases",
                "global_chunk_tokens", "global_batch_seqs"):
        _at_least(f"caseops_ttt.{key}", getattr(t, key), 1)
    if t.lora_rank > 1024 or t.batch_docs > 4096 or t.grad_steps > 100 or t.global_epochs > 100:
        raise ConfigError("caseops_ttt.lora_rank, batch_docs, grad_steps or global_epochs is absurdly large")
    if t.chunk_size > t.eval_seq_len:
        raise ConfigError(f"caseops_ttt.chunk_size ({t.chunk_size}) must not exceed caseops_ttt.eval_seq_len "
                          f"({t.eval_seq_len}): a chunk must fit in its scoring window")
    for key in ("lora_lr", "weight_decay", "global_lr", "global_grad_clip", "adam_eps", "global_warmup_start_lr"):
        _at_least(f"caseops_ttt.{key}", getattr(t, key), 0.0)
    for key in ("prefix_docs", "global_epochs", "global_warmup_chunks"):
        _at_least(f"caseops_ttt.{key}", getattr(t, key), 0)
    if not (0 <= t.beta1 < 1 and 0 <= t.beta2 < 1 and 0 <= t.global_momentum < 1):
        raise ConfigError("caseops_ttt.beta1, beta2 and global_momentum must be in [0, 1)")
    if t.lora_alpha is not None and t.lora_alpha <= 0:
        raise ConfigError(f"caseops_ttt.lora_alpha must be positive or null, got {t.lora_alpha}")


DEFAULT = EvalConfig()
