"""The seed submission's family: the 11-layer GEPA U-Net in the mixed int6/int8 clean container.

Scores standard, sliding-window and legal score-first TTT (SGD or AdamW, frozen leading blocks,
optional int6 fake quantisation) through the shared drivers of `gepa.evaluate`.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from gepa.codec import Artifact
from gepa.containers import clean
from gepa.evaluate import (
    TTTSpec,
    cosine_lr,
)
from gepa.families.driven import DrivenFamily, window_specs
from gepa.families.gepa import config as gcfg
from gepa.families.gepa.config import EvalConfig
from gepa.families.gepa.flops import eval_flops
from gepa.families.gepa.infer import check_against, check_raw_model, infer_model
from gepa.families.gepa.model import GPT, expected_state

GEPA_MARKERS = ("smear_gate.gate", "blocks.0.mlp.up_proj.weight")


def _shapes(art: Artifact) -> dict[str, tuple[int, ...]]:
    obj = art.container
    return {name: tuple(t.shape) for sec in ("quantized", "passthrough") for name, t in (obj.get(sec) or {}).items()
            if isinstance(t, torch.Tensor)}


def build_model(cfg: EvalConfig, state: Mapping[str, Tensor], device: str | torch.device = "cpu") -> GPT:
    """The GEPA model for `cfg` with dequantized weights loaded strictly (fp32; the reference's
    mixed dtypes on CUDA, where it runs under bf16 autocast)."""
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
    out: dict[str, Any] = window_specs(e, t)
    if ttt:
        frozen = tuple(f"blocks.{i}." for i in range(t.freeze_blocks))

        def trainable(model: nn.Module) -> list[nn.Parameter]:
            return [p for name, p in model.named_parameters() if not any(f in name for f in frozen)]

        def optimizer(params: list[nn.Parameter]) -> torch.optim.Optimizer:
            if t.optimizer == "sgd":
                return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum)
            return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)

        def lr(ci: int, num_chunks: int) -> float:
            return t.lr if t.lr_schedule == "constant" else cosine_lr(t.lr, ci, num_chunks)

        def set_train_mode(model: nn.Module, on: bool) -> None:
            model.set_fake_quant(on and t.fake_quant_int6)

        out["ttt"] = TTTSpec(epochs=t.epochs, batch_seqs=t.batch_seqs, grad_clip=t.grad_clip, trainable=trainable,
                             optimizer=optimizer, lr=lr, set_train_mode=set_train_mode)
    return out


class GepaFamily(DrivenFamily):
    name = "gepa"
    title = "GEPA 11L U-Net, mixed int6/int8 + zstd (the seed submission)"
    modes = gcfg.MODES
    tokenizer_asset = "fineweb_1024_bpe.model"
    unrecorded_model_keys = ("xsa_layers", "ve_layers", "rope_dims")

    def parse_config(self, raw: Mapping[str, Any]) -> EvalConfig:
        return gcfg.from_dict(_fit_defaults(dict(raw)))

    def check_raw(self, raw: Mapping[str, Any], art: Artifact) -> None:
        model = raw.get("model")
        if isinstance(model, Mapping):
            check_raw_model(model, _shapes(art))

    def infer_config(self, art: Artifact) -> dict[str, Any]:
        model, _ = infer_model(_shapes(art))
        out = gcfg.DEFAULT.to_dict()
        out["ttt"] = {k: v for k, v in out["ttt"].items() if k != "freeze_blocks"}
        out = _fit_defaults({**out, "model": model})
        out["ttt"].setdefault("freeze_blocks", gcfg.TTTConfig().freeze_blocks)
        return out

    def sniff(self, art: Artifact) -> bool:
        if art.kind != "clean" or art.format not in clean.KNOWN_FORMATS:
            return False
        shapes = _shapes(art)
        return all(m in shapes for m in GEPA_MARKERS)

    def load_state(self, art: Artifact, cfg: EvalConfig) -> dict[str, Tensor]:
        clean.validate_container(art.container)
        check_against(cfg.model, _shapes(art))
        return clean.load_state_dict(art, expected=expected_state(cfg.model))

    def describe(self, art: Artifact) -> dict[str, Any]:
        return clean.describe(art)

    def build_model(self, cfg: EvalConfig, state: Mapping[str, Tensor], device: torch.device) -> nn.Module:
        return build_model(cfg, state, device)

    def specs(self, cfg: EvalConfig) -> dict[str, Any]:
        return specs(cfg)

    def target_flops(self, cfg: EvalConfig, total_targets: int) -> float:
        return eval_flops(cfg, total_targets).total


def _fit_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """Record defaults that depend on the model follow it when the config leaves them out: the
    seed freezes 2 of its 11 blocks during TTT, which a 1-block model cannot; it freezes them all."""
    model, ttt = raw.get("model"), raw.get("ttt", {})
    if not isinstance(model, Mapping) or not isinstance(ttt, Mapping) or "freeze_blocks" in ttt:
        return raw
    layers = model.get("num_layers", gcfg.ModelConfig().num_layers)
    default = gcfg.TTTConfig().freeze_blocks
    if isinstance(layers, int) and not isinstance(layers, bool) and 0 <= layers < default:
        raw = {**raw, "ttt": {**ttt, "freeze_blocks": layers}}
    return raw


FAMILY = GepaFamily()
