"""What a model family provides to the evaluator, and the shared shapes it exchanges.

A family is one package under `gepa/families/` whose `__init__` exposes `FAMILY`, an instance of
a `Family` subclass. The registry (`gepa.families`) discovers the packages; nothing else needs to
change to add one. A family owns its config keys, its model, how its container's tensors become a
state dict, and its evaluation procedures. It reuses the shared machinery: `gepa.containers`
(safe reading, compressors, the generic container formats), `gepa.bpb` (byte accounting and the
float64 accumulator), `gepa.windows` (window and chunk planning), `gepa.evaluate` (standard,
sliding and score-first TTT drivers with the event log), `gepa.results` and `gepa.parallel`.

Byte accounting is per position: `ValData.target_bytes[i]` is what target token `i` is worth when
it is scored (0 for i = 0). The sentencepiece rule (base bytes + a leading space unless the
previous token is a boundary) and the CaseOps canonical counts both reduce to that array, so every
procedure sums `target_bytes[scored positions]`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Protocol

import torch
from torch import Tensor, nn

from gepa.codec import Artifact
from gepa.results import ChunkRecord, EvalResult
from gepa.valdata import ValData

ChunkCallback = Callable[[ChunkRecord], None]
StopCheck = Callable[[], bool]


class FamilyConfig(Protocol):
    """The parsed, validated evaluation config of one family (a frozen dataclass in practice)."""

    family: str

    @property
    def mode(self) -> str: ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the `family` key, accepted unchanged by the family's `parse_config`."""
        ...


class Family(ABC):
    """One model family. Subclasses are stateless; one instance lives in the registry."""

    name: ClassVar[str]             # the config's `family` value, e.g. "sp8192"
    title: ClassVar[str]            # one line for people, e.g. "SP8192 GPTQ + brotli (PR #1394 lineage)"
    modes: ClassVar[tuple[str, ...]]  # accepted eval.mode values
    tokenizer_asset: ClassVar[str]  # bundled tokenizer file name in gepa/assets (default --tokenizer)
    # Model keys that change the score but leave no trace in the weights: they cannot be checked
    # against the artifact, so the evaluator shows the values it used.
    unrecorded_model_keys: ClassVar[tuple[str, ...]] = ()
    # Bundled validation shards (a glob under gepa/assets) made with that tokenizer: the default
    # --val. None: the sp1024 sample (`gepa.shards.BUNDLED_VAL_GLOB`).
    val_asset: ClassVar[str | None] = None

    # -- config -----------------------------------------------------------------------------
    @abstractmethod
    def parse_config(self, raw: Mapping[str, Any]) -> FamilyConfig:
        """Validate a config dict (its `family`, if present, is this family's name). Unknown keys,
        wrong types and illegal combinations raise `gepa.errors.ConfigError` naming the key."""

    def check_raw(self, raw: Mapping[str, Any], art: Artifact) -> None:
        """Before parsing a given config: reject values the artifact contradicts, so the message
        names the key to change instead of a validation rule that key trips further on (default:
        nothing to check)."""

    @abstractmethod
    def infer_config(self, art: Artifact) -> dict[str, Any]:
        """A complete config dict (with `family`) that `parse_config` accepts unchanged: model keys
        from the tensors, the rest from the family's record defaults. `inspect --json` prints it."""

    # -- container --------------------------------------------------------------------------
    @abstractmethod
    def sniff(self, art: Artifact) -> bool:
        """Whether the decoded container is this family's, from its content (format tags, key
        names, shapes), never from the file name."""

    @abstractmethod
    def load_state(self, art: Artifact, cfg: FamilyConfig) -> dict[str, Tensor]:
        """Validate the container against the config and dequantize exactly as the reference does.
        A mismatch raises `ArtifactContentError` naming the tensor and the config key to change."""

    def describe(self, art: Artifact) -> dict[str, Any]:
        """Per-tensor rows and per-scheme totals for `golfcheck inspect`."""
        return art.describe()

    # -- data -------------------------------------------------------------------------------
    @abstractmethod
    def load_data(self, cfg: FamilyConfig, val_glob: str, tokenizer: str | Path, *,
                  sidecar_glob: str | None = None) -> ValData:
        """Read the shards and build the per-position byte counts this family scores with."""

    # -- model and evaluation ---------------------------------------------------------------
    @abstractmethod
    def build_model(self, cfg: FamilyConfig, state: Mapping[str, Tensor], device: torch.device) -> nn.Module:
        """The evaluation model with `state` loaded strictly, in the dtypes the reference uses."""

    @abstractmethod
    def evaluate(self, model: nn.Module, data: ValData, cfg: FamilyConfig, *, device: torch.device,
                 impl: str = "fast", on_chunk: ChunkCallback | None = None,
                 should_stop: StopCheck | None = None, max_tokens: int | None = None,
                 collect_token_losses: bool = False) -> EvalResult:
        """Run `cfg.mode`. Score-first for every adaptive mode: the result's `events` prove each
        target was scored before any update used it. `impl="plain"` is the reference-shaped loop
        kept for equivalence tests and benchmarks."""

    @abstractmethod
    def chunk_count(self, cfg: FamilyConfig, total_tokens: int, max_tokens: int | None = None) -> int:
        """How many `ChunkRecord`s `evaluate` will emit (progress bars, ETAs)."""

    @abstractmethod
    def flops(self, cfg: FamilyConfig, total_tokens: int) -> float:
        """Approximate FLOPs of the whole evaluation (queue ETAs)."""
