"""The challenge's baseline family: the naive-baseline GPT in the int8 + zlib clean container
(NaiveBaseline, LowerLR, SlidingWindowEval, LoRA_TTT and the records that kept its model; spec
`families/baseline.md`).

The container is the shared `__quant_format__` layout (`gepa.containers.clean`) with the tag
`int8_clean_per_row_v1`: per-row int8 matrices with fp16 scales, small matrices as fp16
passthrough returning to their recorded dtype, control tensors in fp32. Standard and sliding
evaluation run through the shared drivers of `gepa.evaluate` (the sliding window list is this
lineage's own, `windows.py`); per-document LoRA TTT is `lora_ttt.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from gepa.codec import Artifact
from gepa.containers import clean
from gepa.errors import ArtifactFormatError
from gepa.evaluate import SlidingSpec, StandardSpec, count_chunks, device_of, evaluate_model, truncate
from gepa.families.base import ChunkCallback, Family, StopCheck
from gepa.families.baseline import config as bcfg
from gepa.families.baseline.config import BaselineConfig
from gepa.families.baseline.flops import eval_flops
from gepa.families.baseline.infer import MARKERS, check_against, expected_state, infer_model, is_baseline_names
from gepa.families.baseline.lora_ttt import LoraSpec, progress_records, run_lora_ttt
from gepa.families.baseline.model import BaselineGPT
from gepa.families.baseline.windows import planners
from gepa.families.driven import targets
from gepa.results import EvalResult
from gepa.valdata import ValData, sentencepiece_data

FORMAT = clean.FORMAT_INT8
# Targets per progress record of the standard and sliding evaluations.
PROGRESS_TOKENS = 32768
# Where a window rule that leaves targets unscored reports its own figure (result.extra).
RECORD_RULE = "record_rule"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _shapes(art: Artifact) -> dict[str, tuple[int, ...]]:
    obj = art.container
    return {name: tuple(t.shape) for sec in ("quantized", "passthrough") for name, t in (obj.get(sec) or {}).items()
            if isinstance(name, str) and isinstance(t, torch.Tensor)}


def _expected(cfg: BaselineConfig) -> dict[str, tuple]:
    m = cfg.model
    out = {}
    for name, (shape, dtype, keys) in expected_state(m).items():
        why = ", ".join(f"model.{k}={getattr(m, k)}" for k in keys.split("/"))
        out[name] = (shape, _DTYPES[dtype], why)
    return out


def build_model(cfg: BaselineConfig, state: Mapping[str, Tensor], device: str | torch.device = "cpu") -> BaselineGPT:
    """The model with dequantized weights loaded strictly: fp32 on CPU (as the fixtures were
    scored), the records' layout (bf16 embedding, bf16 autocast) on CUDA."""
    dev = torch.device(device)
    with torch.device("meta"):
        model = BaselineGPT(cfg.model)
    model = model.to_empty(device=dev)
    model.float()
    model.load_state_dict(dict(state), strict=True)
    if dev.type == "cuda":
        model.reference_dtypes()
    return model.eval()


def specs(cfg: BaselineConfig) -> dict[str, Any]:
    e = cfg.eval
    bvs = e.baseline_val_batch_seqs
    # Progress groups hold whole reference batches, so batching (and the fp32 batch means) match.
    per_chunk = bvs * max(1, PROGRESS_TOKENS // (bvs * e.seq_len))
    scored, compare = planners(e.tail, e.seq_len, e.stride)
    return {
        "standard": StandardSpec(seq_len=e.seq_len, batch_seqs=bvs, chunk_seqs=per_chunk),
        "sliding": SlidingSpec(seq_len=e.seq_len, stride=e.stride, batch_seqs=e.batch_seqs,
                               chunk_tokens=PROGRESS_TOKENS, tail=e.tail, plan=scored, compare=compare,
                               compare_label=RECORD_RULE),
    }


def lora_spec(cfg: BaselineConfig) -> LoraSpec:
    t = cfg.baseline_lora_ttt
    return LoraSpec(rank=t.rank, lr=t.lr, beta1=t.beta1, beta2=t.beta2, eps=t.eps, chunk=t.chunk_tokens,
                    context=t.context_tokens, batch_docs=t.batch_docs, init_seed=t.init_seed)


class BaselineFamily(Family):
    name = bcfg.FAMILY_NAME
    title = "naive-baseline GPT, int8 + zlib (NaiveBaseline, SlidingWindowEval, LoRA_TTT records)"
    modes = bcfg.MODES
    tokenizer_asset = "fineweb_1024_bpe.model"

    def parse_config(self, raw: Mapping[str, Any]) -> BaselineConfig:
        return bcfg.from_dict(dict(raw))

    def infer_config(self, art: Artifact) -> dict[str, Any]:
        return {**bcfg.DEFAULT.to_dict(), "model": infer_model(_shapes(art))}

    def sniff(self, art: Artifact) -> bool:
        return art.kind == "clean" and art.format == FORMAT and is_baseline_names(list(_shapes(art)))

    def load_state(self, art: Artifact, cfg: BaselineConfig) -> dict[str, Tensor]:
        if not self.sniff(art):
            raise ArtifactFormatError(self._not_mine(art))
        check_against(cfg.model, _shapes(art))
        return clean.load_state_dict(art, expected=_expected(cfg))

    @staticmethod
    def _not_mine(art: Artifact) -> str:
        if art.kind != "clean" or art.format != FORMAT:
            return (f"the config names family baseline, but the artifact is a {art.kind} container ({art.format}), "
                    f"not the baseline's {FORMAT}; remove the config's family key to detect the family")
        names = list(_shapes(art))
        foreign = [n for n in names if not is_baseline_names([n, *MARKERS])]
        missing = [m for m in MARKERS if m not in names]
        what = (f"tensor(s) the baseline GPT does not have: {', '.join(foreign[:4])}" if foreign
                else f"no {', '.join(missing[:4])}")
        return (f"the config names family baseline, but the artifact holds {what}; it is another model in the same "
                "container, which this verifier cannot re-score as the baseline")

    def describe(self, art: Artifact) -> dict[str, Any]:
        return clean.describe(art)

    def load_data(self, cfg: BaselineConfig, val_glob: str, tokenizer: str | Path, *,
                  sidecar_glob: str | None = None) -> ValData:
        return sentencepiece_data(val_glob, tokenizer, cfg.model.vocab_size)

    def build_model(self, cfg: BaselineConfig, state: Mapping[str, Tensor], device: torch.device) -> nn.Module:
        return build_model(cfg, state, device)

    def evaluate(self, model: nn.Module, data: ValData, cfg: BaselineConfig, *, device: torch.device,
                 impl: str = "fast", on_chunk: ChunkCallback | None = None, should_stop: StopCheck | None = None,
                 max_tokens: int | None = None, collect_token_losses: bool = False) -> EvalResult:
        if cfg.mode == "lora_ttt":
            # LoRA TTT reads the whole stream (no truncation to whole sequences, spec §5).
            n = data.total_tokens if max_tokens is None else min(data.total_tokens, max_tokens + 1)
            return run_lora_ttt(model, data.tokens[:n], data.target_bytes[:n], lora_spec(cfg),
                                device=device_of(device), impl=impl, on_chunk=on_chunk, should_stop=should_stop,
                                collect_token_losses=collect_token_losses)
        keep = truncate(data.tokens, cfg.eval.seq_len, max_tokens).numel()
        return evaluate_model(model, data.tokens[:keep], data.target_bytes[:keep], mode=cfg.mode, **specs(cfg),
                              device=device_of(device), impl=impl, on_chunk=on_chunk, should_stop=should_stop,
                              collect_token_losses=collect_token_losses)

    def chunk_count(self, cfg: BaselineConfig, total_tokens: int, max_tokens: int | None = None) -> int:
        if cfg.mode == "lora_ttt":
            n = total_tokens if max_tokens is None else min(total_tokens, max_tokens + 1)
            return progress_records(n - 1)
        s = specs(cfg)
        return count_chunks(cfg.mode, targets(total_tokens, cfg.eval.seq_len, max_tokens),
                            standard=s["standard"], sliding=s["sliding"])

    def flops(self, cfg: BaselineConfig, total_tokens: int) -> float:
        if cfg.mode == "lora_ttt":
            return eval_flops(cfg, max(total_tokens - 1, 0)).total
        return eval_flops(cfg, targets(total_tokens, cfg.eval.seq_len, None)).total


FAMILY = BaselineFamily()
