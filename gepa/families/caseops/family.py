"""The CaseOps family: the late-April SP8192 CaseOps records (2026-04-18 … 04-29), including the
04-27 LQER / sparse-gate / BOS-fixed SmearGate variant in its brotli and per-group lrzip containers.

Scores the standard eval and phased score-first TTT (AdamW or SGD LoRA, optional global SGD
phases; LoRA-only with `prefix_docs: 0`), with bytes from golfcheck's canonical counts. A
submitted byte sidecar is compared, never used: `result.extra["caseops_bytes"]` shows both figures
and which one the verdict uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from gepa.codec import Artifact
from gepa.containers import gptq
from gepa.errors import ArtifactContentError
from gepa.evaluate import device_of, truncate
from gepa.families.base import ChunkCallback, Family, StopCheck
from gepa.families.caseops import config as ccfg
from gepa.families.caseops import data as cdata
from gepa.families.caseops import procedures
from gepa.families.caseops.config import EvalConfig
from gepa.families.caseops.flops import eval_flops
from gepa.families.caseops.infer import check_against, infer_model
from gepa.families.caseops.model import CaseOpsGPT, expected_state
from gepa.results import EvalResult
from gepa.valdata import ValData

TOKENIZER = "fineweb_8192_bpe_lossless_caps_caseops_v1_reserved.model"
MARKERS = ("tok_emb.weight", "parallel_post_lambdas", "parallel_resid_lambdas", "blocks.0.attn.c_q.weight")


def build_model(cfg: EvalConfig, state: Mapping[str, Tensor], device: str | torch.device = "cpu") -> CaseOpsGPT:
    """The model in fp32 with the dequantized state loaded strictly (the bf16-rounded embedding
    keeps its rounded values, as the fixtures' `.float()` cast does)."""
    dev = torch.device(device)
    with torch.device("meta"):
        model = CaseOpsGPT(cfg.model)
    model = model.to_empty(device=dev).float()
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    model.bos_id = cfg.eval.caseops_bos_id
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def bytes_report(result: EvalResult, data: ValData) -> dict[str, Any]:
    """Canonical vs submitted-sidecar bytes over the positions this run scored."""
    mask = result.scored_mask  # type: ignore[attr-defined]
    canon = int(data.target_bytes[: mask.numel()][mask].sum())
    rep: dict[str, Any] = {"verdict_uses": "canonical", "canonical_total": canon,
                           **data.extra.get("bytes_facts", {})}
    side = data.extra.get("sidecar")
    if side is not None:
        st = int(side[: mask.numel()][mask].sum())
        rep.update(sidecar=data.extra.get("sidecar_name"), sidecar_total=st,
                   sidecar_relative_diff=(st - canon) / canon if canon else None,
                   sidecar_val_bpb=result.val_bpb * canon / st if st else None,
                   sidecar_whole_stream_total=int(side.sum()),
                   canonical_whole_stream_total=int(data.target_bytes.sum()))
        # Documents whose sidecar total differs from their canonical total (whole stream).
        rep["sidecar_documents_differing"] = _docs_differing(data.tokens, data.target_bytes, side)
    elif "sidecar_error" in data.extra:
        rep["sidecar_error"] = data.extra["sidecar_error"]
    return rep


def _docs_differing(tokens: Tensor, canon: Tensor, side: Tensor, bos_id: int = 1) -> int:
    doc = torch.cumsum((tokens == bos_id).to(torch.int64), 0)
    n = int(doc.max()) + 1
    a = torch.zeros(n, dtype=torch.int64).index_add_(0, doc, canon.to(torch.int64))
    b = torch.zeros(n, dtype=torch.int64).index_add_(0, doc, side.to(torch.int64))
    return int((a != b).sum())


class CaseOpsFamily(Family):
    name = "caseops"
    title = "SP8192 CaseOps, gated attention, loops + parallel lanes, phased TTT (2026-04-18 … 04-29 records)"
    modes = ccfg.MODES
    tokenizer_asset = TOKENIZER
    val_asset = "caseops/fineweb_val_*.bin"  # the 200-document sample in CaseOps tokens

    def parse_config(self, raw: Mapping[str, Any]) -> EvalConfig:
        return ccfg.from_dict(dict(raw))

    def infer_config(self, art: Artifact) -> dict[str, Any]:
        model = infer_model(art)
        out = {**ccfg.DEFAULT.to_dict(), "model": model}
        # The TTT settings of the record the tensors point to (spec §0): a sparse gate means the
        # #1787 lineage (alpha 144, warm-start A), a SmearGate #1851, the lrzip container #1855.
        ttt = dict(out["caseops_ttt"])
        if model["caseops_attn_gate"] == "sparse" or model["caseops_smear_gate"] != "none":
            ttt.update(lora_alpha=144.0, warm_start_a=True, weight_decay=1.0)
        if model["caseops_compressor"] == "pergroup":
            ttt.update(lora_rank=80, beta2=0.99, weight_decay=0.5, prefix_docs=2500)
        out["caseops_ttt"] = ttt
        return out

    def sniff(self, art: Artifact) -> bool:
        if art.kind != "gptq":
            return False
        meta = art.container.get("m", {})
        return all(k in meta for k in MARKERS)

    def load_state(self, art: Artifact, cfg: EvalConfig) -> dict[str, Tensor]:
        if art.kind != "gptq":
            raise ArtifactContentError(f"a CaseOps artifact is a GPTQ {{'w', 'm'}} container, this is {art.kind}")
        check_against(cfg.model, art)
        return gptq.dequantize(art.container, expected_state(cfg.model))

    def describe(self, art: Artifact) -> dict[str, Any]:
        return gptq.describe(art)

    def load_data(self, cfg: EvalConfig, val_glob: str, tokenizer: str | Path, *,
                  sidecar_glob: str | None = None) -> ValData:
        return cdata.load(val_glob, tokenizer, cfg.model.vocab_size, cfg.eval.caseops_bos_id,
                          sidecar_glob=sidecar_glob, sidecar_name=cfg.eval.caseops_sidecar)

    def build_model(self, cfg: EvalConfig, state: Mapping[str, Tensor], device: torch.device) -> nn.Module:
        return build_model(cfg, state, device)

    def evaluate(self, model: nn.Module, data: ValData, cfg: EvalConfig, *, device: torch.device,
                 impl: str = "fast", on_chunk: ChunkCallback | None = None, should_stop: StopCheck | None = None,
                 max_tokens: int | None = None, collect_token_losses: bool = False) -> EvalResult:
        keep = truncate(data.tokens, cfg.eval.seq_len, max_tokens).numel()  # quirk 2: every mode
        result = procedures.run(model, data.tokens[:keep], data.target_bytes[:keep], cfg, device=device_of(device),
                                impl=impl, on_chunk=on_chunk, should_stop=should_stop,
                                collect_token_losses=collect_token_losses)
        result.extra["caseops_bytes"] = bytes_report(result, data)
        return result

    def chunk_count(self, cfg: EvalConfig, total_tokens: int, max_tokens: int | None = None) -> int:
        n = total_tokens if max_tokens is None else min(total_tokens, max_tokens + 1)
        seqs = (n - 1) // cfg.eval.seq_len if n > 1 else 0
        if cfg.mode == "standard":
            return len(procedures.standard_batches(seqs, cfg.eval.caseops_world_size, cfg.eval.local_batch_seqs))
        return 0  # TTT steps depend on the document lengths; the progress bar counts without a total

    def flops(self, cfg: EvalConfig, total_tokens: int) -> float:
        return eval_flops(cfg, total_tokens)


FAMILY = CaseOpsFamily()
