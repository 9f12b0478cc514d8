"""The March 11-layer GPT: the GEPA seed's parent under its own tensor names.

Shared with the gepa family (imported, not copied): the attention (GQA, partial RoPE with the
NTK rescale above `rope_train_seq_len`, q/k RMS norm, q gain, XSA), SmearGate, the bigram hash
and value embeddings, and the cast linear layer. Its own: the MLP `fc`/`proj` with ReLU^2 or
LeakyReLU(0.5)^2 and no per-channel scale or bias, the U-Net skips added with `skip_weights`
only (no gates), and the module names `smear`, `bigram`. State-dict keys and shapes match the
reference's (the 03-22 record; the 03-23+ records' parameter banks are exported under the same
names), so a dequantised artifact loads with `strict=True`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gepa.families.gepa.model import (
    BigramHashEmbedding,
    CastedLinear,
    CausalSelfAttention,
    ResidualBlock,
    Rotary,
    SmearGate,
    ValueEmbedding,
    rms_norm,
)
from gepa.families.lm import HiddenHeadLM, softcap
from gepa.families.march11l.config import ModelConfig

# Tables the reference keeps in bf16 in its run layout (`.bfloat16()` then fp32 for CastedLinear
# and low-dimensional/control parameters): dequantised values are rounded to bf16 there.
BF16_TABLES = ("tok_emb.weight", "bigram.embed.weight", "ve_shared.embed.weight")


class RecordRotary(Rotary):
    """The gepa rotary with the records' table states (`model.march11l_rope_table`) for windows
    up to the train length; longer windows take the NTK-rescaled fp32 table, as the records do."""

    def __init__(self, dims: int, base: float, train_seq_len: int, table: str):
        super().__init__(dims, base, train_seq_len)
        self.table = table

    def cos_sin(self, seq_len: int, device: torch.device) -> tuple[Tensor, Tensor]:
        if self.table == "fp32" or seq_len > self.train_seq_len:
            return super().cos_sin(seq_len, device)
        key = (seq_len, str(device))
        hit = self._cache.get(key)
        if hit is None:
            with torch.inference_mode(False), torch.no_grad():
                inv = self._inv_freq(self.base).to(torch.bfloat16)
                if self.table == "bf16_freqs":
                    inv = inv.float()
                inv = inv.to(device)
                freqs = torch.outer(torch.arange(seq_len, device=device, dtype=inv.dtype), inv)
                hit = (freqs.cos().float()[None, None], freqs.sin().float()[None, None])
            self._cache[key] = hit
        return hit


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc = CastedLinear(cfg.model_dim, cfg.hidden)
        self.proj = CastedLinear(cfg.hidden, cfg.model_dim, zero_init=True)
        self.leaky = cfg.march11l_activation == "leaky_relu2"

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc(x)
        h = F.leaky_relu(h, negative_slope=0.5) if self.leaky else torch.relu(h)
        return self.proj(h.square())


class Block(ResidualBlock):
    def __init__(self, cfg: ModelConfig, index: int):
        super().__init__()
        d = cfg.model_dim
        self.attn = CausalSelfAttention(cfg, xsa=index >= cfg.num_layers - cfg.xsa_layers)  # type: ignore[arg-type]
        hd = cfg.head_dim
        self.attn.rotary = RecordRotary(cfg.rope_dims if 0 < cfg.rope_dims < hd else hd, cfg.rope_base,
                                        cfg.rope_train_seq_len, cfg.march11l_rope_table)
        self.mlp = MLP(cfg)
        self.attn_scale = nn.Parameter(torch.ones(d))
        self.mlp_scale = nn.Parameter(torch.ones(d))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(d), torch.zeros(d))))
        self.ln_scale = 1.0 / math.sqrt(index + 1) if cfg.ln_scale else 1.0


    def matrices(self) -> list[CastedLinear]:
        a = self.attn
        return [a.c_q, a.c_k, a.c_v, a.proj, self.mlp.fc, self.mlp.proj]


class GPT(HiddenHeadLM):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d, L = cfg.model_dim, cfg.num_layers
        self.tok_emb = nn.Embedding(cfg.vocab_size, d)
        self.bigram = BigramHashEmbedding(cfg.bigram_buckets, cfg.bigram_embed_dim, d) if cfg.bigram_buckets else None
        self.smear = SmearGate(d)
        self.n_enc = L // 2
        self.n_dec = L - self.n_enc
        self.skip_weights = nn.Parameter(torch.ones(min(self.n_enc, self.n_dec), d))
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(L))
        ve_layers = [i for i in cfg.ve_layers] if cfg.ve_enabled else []
        if ve_layers:
            self.ve_shared = ValueEmbedding(cfg.vocab_size, cfg.ve_dim, cfg.kv_dim)
            self.ve_layer_scales = nn.ParameterList(nn.Parameter(torch.ones(1)) for _ in ve_layers)
        else:
            self.ve_shared = None
            self.ve_layer_scales = nn.ParameterList()
        # first listing wins, as the reference's list.index does
        self.ve_index = {layer: ve_layers.index(layer) for layer in ve_layers}
        self.lm_head = None if cfg.tie_embeddings else CastedLinear(d, cfg.vocab_size, zero_init=True)

    def set_fake_quant(self, on: bool) -> None:
        """The late-QAT flag as the banked references apply it during TTT: every CastedLinear
        module fake-quantises, the block matrices (parameter banks there) do not."""
        for m in (self.bigram.proj if self.bigram else None, self.ve_shared.proj if self.ve_shared else None,
                  self.lm_head):
            if m is not None:
                m.fake_quant = on

    def reference_dtypes(self) -> "GPT":
        """The reference's run layout: the three embedding tables in bf16, everything else fp32."""
        self.float()
        for name, p in self.named_parameters():
            if name in BF16_TABLES:
                p.data = p.data.to(torch.bfloat16)
        return self

    def hidden(self, ids: Tensor, q_from: int = 0) -> Tensor:
        """Final-normed hidden states (B, T - q_from, d); earlier positions are context only."""
        x = self.tok_emb(ids)
        if self.bigram is not None:
            x = x + self.bigram(ids)
        x = self.smear(rms_norm(x))
        x0 = x
        ve = self.ve_shared(ids) if self.ve_shared is not None else None

        def v_embed(i: int) -> Tensor | None:
            j = self.ve_index.get(i)
            return None if j is None or ve is None else ve * self.ve_layer_scales[j].to(ve.dtype)

        skips: list[Tensor] = []
        for i in range(self.n_enc):
            x = self.blocks[i](x, x0, v_embed(i))
            skips.append(x)
        for i in range(self.n_dec):
            bi = self.n_enc + i
            if skips:
                x = x + self.skip_weights[i].to(x.dtype) * skips.pop()
            last = bi == len(self.blocks) - 1
            x = self.blocks[bi](x, x0, v_embed(bi), q_from if last else 0)
        return rms_norm(x)

    def head(self, h: Tensor) -> Tensor:
        if self.lm_head is None:
            logits = F.linear(h, self.tok_emb.weight.to(h.dtype))
        else:
            logits = self.lm_head(h)
        return softcap(logits, self.cfg.logit_softcap)


def expected_state(cfg: ModelConfig) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Every state-dict key with its shape and the dtype the reference dequantises it to."""
    with torch.device("meta"):
        model = GPT(cfg)
    return {name: (tuple(t.shape), torch.bfloat16 if name in BF16_TABLES else torch.float32)
            for name, t in model.state_dict().items()}
