"""The March 11-layer family: the 03-20 to 03-29 records (leaderboard rows 23-29), the GEPA
seed's parent, in `mixed_quantize_int6`'s `{"w", "m"}` container (zstd-22 or xz/LZMA).

Scores standard, sliding-window (the reference's tail rule) and the 03-23 record's legal
score-first TTT through the shared drivers of `gepa.evaluate`, with the gepa family's FLOP model
(same matrices; this lineage only lacks the MLP's per-channel scale and bias).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from gepa.codec import Artifact
from gepa.containers import gptq
from gepa.errors import ArtifactContentError, ArtifactFormatError
from gepa.evaluate import (
    TTTSpec,
    cosine_lr,
)
from gepa.families.driven import DrivenFamily, window_specs
from gepa.families.gepa.flops import eval_flops
from gepa.families.march11l import config as mcfg
from gepa.families.march11l import infer
from gepa.families.march11l.config import EvalConfig
from gepa.families.march11l.model import GPT, expected_state

# Per-block vectors: what "freeze the first N blocks" freezes in the banked references, whose
# block matrices live in parameter banks outside `blocks.N.` and therefore always train.
_BLOCK_VECTORS = ("attn_scale", "mlp_scale", "resid_mix", "attn.q_gain")


def _shapes(art: Artifact) -> dict[str, tuple[int, ...]]:
    out = {}
    for name in gptq.stored_names(art.container):
        try:
            out[name] = gptq.base_shape(art.container, name)
        except ArtifactContentError:
            continue  # reported with its name by load_state
    return out


def _require_mine(art: Artifact) -> None:
    """A config naming this family on another family's artifact: say so, in one line."""
    why = (f"it is a {art.kind} container ({art.format})" if art.kind != "gptq"
           else infer.foreign(art.container.get("m", {})))
    if why:
        raise ArtifactFormatError(f"the config names family march11l, but the artifact is not a March 11-layer "
                                  f"{{'w', 'm'}} container: {why}; remove the config's family key to detect the family")


def build_model(cfg: EvalConfig, state: Mapping[str, Tensor], device: str | torch.device = "cpu") -> GPT:
    """The model with the dequantised weights loaded strictly: fp32 on CPU (the embedding tables
    keep their bf16-rounded values), the reference's run layout on CUDA."""
    dev = torch.device(device)
    with torch.device("meta"):
        model = GPT(cfg.model)
    model = model.to_empty(device=dev)
    model.float()
    model.load_state_dict(dict(state), strict=True)
    if dev.type == "cuda":
        model.reference_dtypes()
    return model.eval()


def _frozen(name: str, blocks: int) -> bool:
    return any(name == f"blocks.{i}.{v}" for i in range(blocks) for v in _BLOCK_VECTORS)


def specs(cfg: EvalConfig) -> dict[str, Any]:
    e, t = cfg.eval, cfg.ttt
    ttt = e.mode == "ttt"
    out: dict[str, Any] = window_specs(e, t)
    if ttt:
        def trainable(model: nn.Module) -> list[nn.Parameter]:
            return [p for name, p in model.named_parameters() if not _frozen(name, t.freeze_blocks)]

        def optimizer(params: list[nn.Parameter]) -> torch.optim.Optimizer:
            return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum)

        def set_train_mode(model: nn.Module, on: bool) -> None:
            model.set_fake_quant(on and t.fake_quant_int6)

        out["ttt"] = TTTSpec(epochs=t.epochs, batch_seqs=t.batch_seqs, grad_clip=t.grad_clip, trainable=trainable,
                             optimizer=optimizer, lr=lambda ci, n: cosine_lr(t.lr, ci, n),
                             set_train_mode=set_train_mode)
    return out


class March11LFamily(DrivenFamily):
    name = "march11l"
    title = "March 11L GPT, int6 + zstd/lzma (records 03-20 to 03-29, parent of the GEPA seed)"
    modes = mcfg.MODES
    tokenizer_asset = "fineweb_1024_bpe.model"
    unrecorded_model_keys = ("xsa_layers", "ve_layers", "rope_dims", "ln_scale", "march11l_activation",
                             "march11l_rope_table")

    def parse_config(self, raw: Mapping[str, Any]) -> EvalConfig:
        return mcfg.from_dict(raw)

    def check_raw(self, raw: Mapping[str, Any], art: Artifact) -> None:
        _require_mine(art)
        model = raw.get("model")
        if isinstance(model, Mapping):
            infer.check_raw_model(model, _shapes(art))

    def infer_config(self, art: Artifact) -> dict[str, Any]:
        _require_mine(art)
        return {**mcfg.DEFAULT.to_dict(), "model": infer.infer_model(_shapes(art))}

    def sniff(self, art: Artifact) -> bool:
        return art.kind == "gptq" and infer.claims(art.container.get("m", {}))

    def load_state(self, art: Artifact, cfg: EvalConfig) -> dict[str, Tensor]:
        _require_mine(art)
        gptq.validate(art.container)
        infer.check_against(cfg.model, _shapes(art))
        return gptq.dequantize(art.container, expected_state(cfg.model))

    def describe(self, art: Artifact) -> dict[str, Any]:
        return gptq.describe(art)

    def build_model(self, cfg: EvalConfig, state: Mapping[str, Tensor], device: torch.device) -> nn.Module:
        return build_model(cfg, state, device)

    def specs(self, cfg: EvalConfig) -> dict[str, Any]:
        return specs(cfg)

    def target_flops(self, cfg: EvalConfig, total_targets: int) -> float:
        return eval_flops(cfg, total_targets).total  # type: ignore[arg-type]


FAMILY = March11LFamily()
