"""The challenge's naive-baseline GPT (spec §4): a U-Net of plain blocks with GQA, full-head RoPE,
parameter-free RMS norms, ReLU² MLPs, a tied (or untied) head and a 30·tanh(z/30) soft-cap.

State-dict keys, shapes and order match the reference so a dequantized artifact loads with
`strict=True`. The rotary tables are built in one of the three states the records left them in
(`baseline_rope_tables`, spec §4.6). Optional per-document LoRA adapters (`LoraSet`) add to the
query and value projections and to the head, as the LoRA_TTT record does (spec §8.4).

The scoring interface is the one `gepa.evaluate` drives: `hidden(ids, q_from)` (final-normed
states; with `q_from` the last block computes outputs only from that position on), `head(h)`,
`forward_logits(ids)` and `forward(ids, targets)` (mean loss, the reference's standard eval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gepa.families.baseline.config import ModelConfig


def rms_norm(x: Tensor) -> Tensor:
    # eps=None: torch uses finfo(dtype).eps, as the reference's parameter-free RMSNorm does.
    return F.rms_norm(x, (x.size(-1),))


class CastedLinear(nn.Linear):
    """Bias-free linear whose fp32 weight is cast to the activation dtype (bf16 under autocast)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.to(x.dtype))


@dataclass
class LoraPair:
    """One batched adapter: A (n, r, in), B (n, out, r); output `(u @ Aᵀ) @ Bᵀ` per document."""

    A: Tensor
    B: Tensor

    def __call__(self, u: Tensor) -> Tensor:
        return (u @ self.A.transpose(1, 2)) @ self.B.transpose(1, 2)

    def rows(self, idx: Tensor) -> "LoraPair":
        return LoraPair(self.A.index_select(0, idx), self.B.index_select(0, idx))


@dataclass
class LoraSet:
    """The adapters of one batch of documents: the head, and q and v of every block."""

    head: LoraPair
    q: list[LoraPair]
    v: list[LoraPair]

    def parameters(self) -> list[Tensor]:
        """In the reference module's parameter order (head, then q_0..q_{L-1}, then v_0..)."""
        out = [self.head.A, self.head.B]
        for p in self.q + self.v:
            out += [p.A, p.B]
        return out

    def rows(self, idx: Tensor) -> "LoraSet":
        return LoraSet(self.head.rows(idx), [p.rows(idx) for p in self.q], [p.rows(idx) for p in self.v])


def rope_inv_freq(head_dim: int, base: float) -> Tensor:
    return 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))


def rope_tables(head_dim: int, base: float, seq_len: int, state: str, device: torch.device) -> tuple[Tensor, Tensor]:
    """cos/sin (seq_len, head_dim/2) as the reference's Rotary builds them in each buffer state.

    bf16: `.bfloat16()` converted the buffer, so positions, angles and cos/sin are all bf16 (and
    positions above 256 collide); bf16_freqs: the buffer was converted back to fp32 after the bf16
    rounding, so only the frequencies carry it."""
    inv = rope_inv_freq(head_dim, base)
    if state == "bf16":
        inv = inv.to(torch.bfloat16)
    elif state == "bf16_freqs":
        inv = inv.to(torch.bfloat16).float()
    inv = inv.to(device)
    t = torch.arange(seq_len, device=device, dtype=inv.dtype)
    freqs = torch.outer(t, inv)
    return freqs.cos(), freqs.sin()


class Rotary(nn.Module):
    """Full-head, half-split rotary embedding with a per-(length, device) table cache."""

    def __init__(self, head_dim: int, base: float, state: str):
        super().__init__()
        self.head_dim, self.base, self.state = head_dim, base, state
        self._cache: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}

    def tables(self, seq_len: int, device: torch.device) -> tuple[Tensor, Tensor]:
        key = (seq_len, str(device))
        hit = self._cache.get(key)
        if hit is None:
            # Outside inference mode, so a table first made while scoring can serve TTT training.
            with torch.inference_mode(False), torch.no_grad():
                hit = rope_tables(self.head_dim, self.base, seq_len, self.state, device)
            self._cache[key] = hit
        return hit

    def forward(self, x: Tensor, seq_len: int, offset: int = 0) -> Tensor:
        """Rotate x (B, H, t, Dh) whose positions are offset..offset+t-1 of a window of seq_len."""
        cos, sin = self.tables(seq_len, x.device)
        t = x.size(-2)
        cos, sin = cos[offset: offset + t].to(x.dtype), sin[offset: offset + t].to(x.dtype)
        half = x.size(-1) // 2
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat((x1 * cos + x2 * sin, x1 * (-sin) + x2 * cos), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, h, hkv, hd = cfg.model_dim, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.num_heads, self.num_kv_heads, self.head_dim = h, hkv, hd
        self.q_gain = nn.Parameter(torch.full((h,), 1.5))
        self.c_q = CastedLinear(d, d)
        self.c_k = CastedLinear(d, hkv * hd)
        self.c_v = CastedLinear(d, hkv * hd)
        self.proj = CastedLinear(d, d)
        self.rotary = Rotary(hd, cfg.rope_base, cfg.baseline_rope_tables)

    def forward(self, u: Tensor, q_from: int = 0, lq: LoraPair | None = None, lv: LoraPair | None = None) -> Tensor:
        """Attention of the normed input u (B, T, d); with `q_from` only positions q_from.. produce
        outputs (they still attend to every earlier position)."""
        b, t, d = u.shape
        h, hkv, hd = self.num_heads, self.num_kv_heads, self.head_dim
        uq = u[:, q_from:] if q_from else u
        tq = t - q_from
        q = self.c_q(uq)
        if lq is not None:
            q = q + lq(uq)
        k = self.c_k(u)
        v = self.c_v(u)
        if lv is not None:
            v = v + lv(u)
        q = q.reshape(b, tq, h, hd).transpose(1, 2)
        k = k.reshape(b, t, hkv, hd).transpose(1, 2)
        v = v.reshape(b, t, hkv, hd).transpose(1, 2)
        q, k = rms_norm(q), rms_norm(k)
        q, k = self.rotary(q, t, q_from), self.rotary(k, t)
        q = q * self.q_gain.to(q.dtype)[None, :, None, None]
        if q_from:
            keys = torch.arange(t, device=u.device)
            mask = keys[None, :] <= keys[q_from:, None]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=hkv != h)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=hkv != h)
        return self.proj(y.transpose(1, 2).contiguous().reshape(b, tq, d))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc = CastedLinear(cfg.model_dim, cfg.mlp_hidden)
        self.proj = CastedLinear(cfg.mlp_hidden, cfg.model_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(torch.relu(self.fc(x)).square())


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.model_dim
        self.attn_scale = nn.Parameter(torch.ones(d))
        self.mlp_scale = nn.Parameter(torch.ones(d))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(d), torch.zeros(d))))
        self.attn = CausalSelfAttention(cfg)
        self.mlp = MLP(cfg)

    def forward(self, x: Tensor, x0: Tensor, q_from: int = 0, lq: LoraPair | None = None,
                lv: LoraPair | None = None) -> Tensor:
        mix = self.resid_mix.to(x.dtype)
        x = mix[0][None, None, :] * x + mix[1][None, None, :] * x0
        attn = self.attn(rms_norm(x), q_from, lq, lv)
        if q_from:
            x = x[:, q_from:]
        x = x + self.attn_scale.to(x.dtype)[None, None, :] * attn
        return x + self.mlp_scale.to(x.dtype)[None, None, :] * self.mlp(rms_norm(x))


class BaselineGPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d, n_layers = cfg.model_dim, cfg.num_layers
        self.n_enc = n_layers // 2
        self.n_dec = n_layers - self.n_enc
        self.skip_weights = nn.Parameter(torch.ones(min(self.n_enc, self.n_dec), d))
        self.tok_emb = nn.Embedding(cfg.vocab_size, d)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(n_layers))
        self.lm_head = None if cfg.tie_embeddings else CastedLinear(d, cfg.vocab_size)

    def reference_dtypes(self) -> "BaselineGPT":
        """The records' parameter layout on CUDA: tok_emb in bf16, everything else fp32."""
        self.float()
        self.tok_emb.to(torch.bfloat16)
        return self

    def hidden(self, ids: Tensor, q_from: int = 0, lora: LoraSet | None = None) -> Tensor:
        """Final-normed hidden states (B, T - q_from, d) before the head."""
        x = rms_norm(self.tok_emb(ids))
        x0 = x
        skips: list[Tensor] = []
        last = len(self.blocks) - 1
        for i in range(self.n_enc):
            x = self.blocks[i](x, x0, q_from if i == last else 0,
                               lora.q[i] if lora else None, lora.v[i] if lora else None)
            skips.append(x)
        for j in range(self.n_dec):
            bi = self.n_enc + j
            if skips:
                x = x + self.skip_weights[j].to(x.dtype)[None, None, :] * skips.pop()
            x = self.blocks[bi](x, x0, q_from if bi == last else 0,
                                lora.q[bi] if lora else None, lora.v[bi] if lora else None)
        return rms_norm(x)

    def head(self, h: Tensor, lora: LoraSet | None = None) -> Tensor:
        """Soft-capped logits for hidden states of any leading shape (batched (n, T, d) with lora)."""
        if self.lm_head is None:
            logits = F.linear(h, self.tok_emb.weight.to(h.dtype))
        else:
            logits = self.lm_head(h)
        if lora is not None:
            logits = logits + lora.head(h)
        c = self.cfg.logit_softcap
        return c * torch.tanh(logits / c)

    def forward_logits(self, ids: Tensor) -> Tensor:
        return self.head(self.hidden(ids))

    def forward(self, ids: Tensor, targets: Tensor) -> Tensor:
        """Mean cross-entropy over every position (the reference's standard-eval batch loss)."""
        logits = self.forward_logits(ids)
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1))

    def token_losses(self, ids: Tensor, targets: Tensor, lora: LoraSet | None = None, q_from: int = 0) -> Tensor:
        """Per-position cross-entropy (B, T - q_from) in fp32 for targets[:, q_from:]."""
        logits = self.head(self.hidden(ids, q_from, lora), lora)
        tgt = targets[:, q_from:] if q_from else targets
        v = logits.size(-1)
        return F.cross_entropy(logits.float().reshape(-1, v), tgt.reshape(-1), reduction="none").view(tgt.shape)


def new_lora(cfg: ModelConfig, n: int, rank: int, order: str, gen: torch.Generator) -> LoraSet:
    """Adapters for n documents: every A ~ U(±1/√d) drawn from `gen`, every B = 0 (spec §8.3).

    `order` reproduces the reference's draws: "construct" (head, then q_i, v_i per block, as the
    module is built) or "reset" (head, then all q, then all v, as its reset walks the modules)."""
    d, bound = cfg.model_dim, 1.0 / math.sqrt(cfg.model_dim)

    def pair(out: int) -> LoraPair:
        return LoraPair(torch.empty(n, rank, d), torch.zeros(n, out, rank))

    head = pair(cfg.vocab_size)
    q = [pair(d) for _ in range(cfg.num_layers)]
    v = [pair(cfg.kv_dim) for _ in range(cfg.num_layers)]
    if order == "construct":
        seq = [head] + [p for i in range(cfg.num_layers) for p in (q[i], v[i])]
    else:
        seq = [head] + q + v
    for p in seq:
        p.A.uniform_(-bound, bound, generator=gen)
    return LoraSet(head, q, v)

