"""The sp8192 family: GPTQ int6 matrices + int8 embeddings, byte shuffle + brotli (or xz), depth
recurrence, gated U-Net skips and GPT-J parallel residuals (records 04-05 to 04-09, spec
families/sp8192.md).

Scores standard, sliding-window (each target exactly once) and score-first SGD TTT (every
parameter trained, one optimizer for the whole pass, cosine LR across chunks) through the shared
drivers of `gepa.evaluate`.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from gepa.codec import Artifact
from gepa.containers import gptq
from gepa.errors import ArtifactContentError
from gepa.evaluate import (
    SlidingSpec,
    StandardSpec,
    TTTSpec,
    cosine_lr,
)
from gepa.families.driven import DrivenFamily
from gepa.families.sp8192 import config as scfg
from gepa.families.sp8192 import infer
from gepa.families.sp8192.config import EvalConfig
from gepa.families.sp8192.flops import eval_flops
from gepa.families.sp8192.model import GPT, expected_state


def _shapes(art: Artifact) -> dict[str, tuple[int, ...]]:
    out = {}
    for name in gptq.stored_names(art.container):
        try:
            out[name] = gptq.base_shape(art.container, name)
        except ArtifactContentError:
            continue  # reported with its name by load_state
    return out


def build_model(cfg: EvalConfig, state: Mapping[str, Tensor], device: str | torch.device = "cpu") -> GPT:
    """The model for `cfg` with the dequantised weights loaded strictly: fp32 on CPU (the
    embedding keeps its bf16-rounded values), the reference's mixed dtypes on CUDA."""
    dev = torch.device(device)
    with torch.device("meta"):
        model = GPT(cfg.model, init=False)
    model = model.to_empty(device=dev)
    model.float()
    model.load_state_dict(dict(state), strict=True)
    if dev.type == "cuda":
        model.reference_dtypes()
    return model.eval()


def specs(cfg: EvalConfig) -> dict[str, Any]:
    e, t = cfg.eval, cfg.ttt
    ttt = e.mode == "ttt"
    out: dict[str, Any] = {
        "standard": StandardSpec(seq_len=e.seq_len, batch_seqs=e.sp8192_standard_batch_seqs,
                                 chunk_seqs=max(1, t.chunk_tokens // e.seq_len)),
        "sliding": SlidingSpec(seq_len=e.seq_len, stride=e.stride, batch_seqs=e.batch_seqs,
                               chunk_tokens=t.chunk_tokens, tail="exact_once", keep_first=ttt),
    }
    if ttt:
        frozen = tuple(f"blocks.{i}." for i in range(t.freeze_blocks))

        def trainable(model: nn.Module) -> list[nn.Parameter]:
            # Every parameter, the tied embedding/head and all scalars included (spec §6.3).
            return [p for name, p in model.named_parameters() if not any(name.startswith(f) for f in frozen)]

        def optimizer(params: list[nn.Parameter]) -> torch.optim.Optimizer:
            return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)

        def lr(ci: int, num_chunks: int) -> float:
            return t.lr if t.lr_schedule == "constant" else cosine_lr(t.lr, ci, num_chunks)

        out["ttt"] = TTTSpec(epochs=t.epochs, batch_seqs=t.batch_seqs, grad_clip=t.grad_clip, trainable=trainable,
                             optimizer=optimizer, lr=lr)
    return out


class Sp8192Family(DrivenFamily):
    name = "sp8192"
    title = "SP8192 GPTQ int6 + brotli, depth recurrence, parallel residuals (PR #1394 lineage)"
    modes = scfg.MODES
    tokenizer_asset = "fineweb_8192_bpe.model"
    # The bundled 200-document sample in sp8192 tokens (BOS before each document, as the
    # challenge's shards and the fixture: its documents 150-167 are the fixture's shard).
    val_asset = "sp8192/fineweb_val_*.bin"

    def parse_config(self, raw: Mapping[str, Any]) -> EvalConfig:
        return scfg.from_dict(dict(raw))

    def infer_config(self, art: Artifact) -> dict[str, Any]:
        return {**scfg.DEFAULT.to_dict(), "model": infer.infer_model(_shapes(art), art.compression)}

    def sniff(self, art: Artifact) -> bool:
        return art.kind == "gptq" and infer.claims(art.container.get("m", {}))

    def load_state(self, art: Artifact, cfg: EvalConfig) -> dict[str, Tensor]:
        if art.kind != "gptq":
            raise ArtifactContentError(f"an sp8192 artifact is a GPTQ {{'w', 'm'}} container; this one is "
                                       f"{art.kind} ({art.format})")
        gptq.validate(art.container)
        infer.check_against(cfg.model, _shapes(art), art.compression)
        state = gptq.dequantize(art.container, expected_state(cfg.model))
        for name, t in state.items():
            if not t.is_floating_point():
                raise ArtifactContentError(f"tensor {name} is stored as {str(t.dtype).removeprefix('torch.')}; the "
                                           "sp8192 container keeps small tensors as float16 passthrough")
        return state

    def describe(self, art: Artifact) -> dict[str, Any]:
        return gptq.describe(art)

    def build_model(self, cfg: EvalConfig, state: Mapping[str, Tensor], device: torch.device) -> nn.Module:
        return build_model(cfg, state, device)

    def specs(self, cfg: EvalConfig) -> dict[str, Any]:
        return specs(cfg)

    def target_flops(self, cfg: EvalConfig, total_targets: int) -> float:
        return eval_flops(cfg, total_targets).total


FAMILY = Sp8192Family()
