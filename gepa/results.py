"""Result records of an evaluation: per-chunk timing and running BPB, the legality event log,
and the final numbers. Plain dataclasses so the service can store them as rows or JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ChunkRecord:
    index: int               # 0-based chunk index (for standard/sliding: batch group index)
    windows: int             # windows scored in this chunk
    tokens_scored: int       # targets scored in this chunk (with the reference's tail repeats)
    bytes_scored: int
    score_seconds: float
    train_seconds: float     # 0.0 when the chunk was not trained on (the last one, or no TTT)
    running_loss: float      # mean NLL over everything scored so far (nats)
    running_bpb: float       # bits per byte over everything scored so far
    lr: float = 0.0          # TTT learning rate used to train on this chunk (0 if not trained)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Event:
    """One step of the legality log: `score` or `train` of a chunk, with the target range it touched.

    For `score` the range is the half-open interval of target indices scored; for `train` it is the
    range of target indices whose labels the update used. The log proves every target was scored
    before any update that used it."""

    kind: str
    chunk: int
    first_target: int
    end_target: int


@dataclass
class EvalResult:
    mode: str
    val_loss: float
    val_bpb: float
    tokens_scored: int
    bytes_scored: int
    elapsed_s: float
    chunks: list[ChunkRecord] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    total_targets: int = 0
    # Targets of the evaluated stream that the procedure never scored (a window rule with gaps).
    # A result with any is not a full-coverage score (gepa.compliance.rules.coverage).
    unscored_targets: int = 0
    device: str = "cpu"
    # Provenance, filled by gepa.runner: which family scored it, on which validation stream.
    family: str = ""
    val_sha256: str = ""     # sha256 of the validation shard files, in order
    val_tokens: int = 0      # tokens in those shards (before any truncation)
    max_tokens: int | None = None  # the demo cut (--max-tokens / max_val_tokens), None for a full run
    # Family-specific figures (e.g. CaseOps: the submitted sidecar's byte count next to ours).
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, with_events: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "mode": self.mode,
            "val_loss": self.val_loss,
            "val_bpb": self.val_bpb,
            "tokens_scored": self.tokens_scored,
            "bytes_scored": self.bytes_scored,
            "elapsed_s": self.elapsed_s,
            "total_targets": self.total_targets,
            "unscored_targets": self.unscored_targets,
            "device": self.device,
            "family": self.family,
            "val_sha256": self.val_sha256,
            "val_tokens": self.val_tokens,
            "max_tokens": self.max_tokens,
            "extra": self.extra,
        }
        d["chunks"] = [c.to_dict() for c in self.chunks]
        if with_events:
            d["events"] = [dataclasses.asdict(e) for e in self.events]
        return d
