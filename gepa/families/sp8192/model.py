"""The sp8192 language model (spec §4): a U-Net transformer with depth recurrence, gated skips,
GPT-J parallel residuals on the later blocks, partial RoPE, GQA, XSA and a tied softcapped head.

Blocks are shared across loop passes (same weights, same physical-index LN scale). State-dict
keys and shapes are the reference's, so a dequantised artifact loads with `strict=True`. The
module is fp32; the token embedding keeps the bf16-rounded values the container loader gives it,
and `reference_dtypes()` returns it to a bf16 parameter for the CUDA path (bf16 autocast).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gepa.families.lm import HiddenHeadLM, softcap
from gepa.families.sp8192.config import ModelConfig
from gepa.families.sp8192.rotary import cos_sin


def rms_norm(x: Tensor) -> Tensor:
    return F.rms_norm(x, (x.size(-1),))


class CastedLinear(nn.Linear):
    """Bias-free linear layer whose weight is cast to the input dtype."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.to(x.dtype))


class Rotary(nn.Module):
    """Partial RoPE on the first `dims` channels of each head, tables from `rotary.cos_sin`."""

    def __init__(self, cfg: ModelConfig, dims: int):
        super().__init__()
        self.dims, self.base = dims, cfg.rope_base
        self.kind, self.train_seq_len = cfg.sp8192_rope_table, cfg.sp8192_rotary_train_seq_len
        self._cache: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}

    def tables(self, seq_len: int, device: torch.device) -> tuple[Tensor, Tensor]:
        key = (seq_len, str(device))
        hit = self._cache.get(key)
        if hit is None:
            # Built outside inference mode so a table first made while scoring can serve TTT training.
            with torch.inference_mode(False), torch.no_grad():
                cos, sin = cos_sin(self.kind, seq_len, self.dims, self.base, self.train_seq_len)
                hit = (cos.to(device)[None, :, None, :], sin.to(device)[None, :, None, :])
            self._cache[key] = hit
        return hit

    def forward(self, x: Tensor, seq_len: int, offset: int = 0) -> Tensor:
        """Rotate `x` (B, T', H, D) whose positions are offset.. of a sequence of `seq_len`."""
        if self.dims == 0:
            return x
        cos, sin = self.tables(seq_len, x.device)
        n = x.size(1)
        if offset or n != seq_len:
            cos, sin = cos[:, offset: offset + n], sin[:, offset: offset + n]
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        half = self.dims // 2
        x1, x2, rest = x[..., :half], x[..., half: self.dims], x[..., self.dims:]
        out = torch.cat((x1 * cos + x2 * sin, x1 * (-sin) + x2 * cos), dim=-1)
        return out if rest.size(-1) == 0 else torch.cat((out, rest), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig, xsa: bool):
        super().__init__()
        d, h, hkv, hd = cfg.model_dim, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.num_heads, self.num_kv_heads, self.head_dim = h, hkv, hd
        self.c_q = CastedLinear(d, d)
        self.c_k = CastedLinear(d, hkv * hd)
        self.c_v = CastedLinear(d, hkv * hd)
        self.proj = CastedLinear(d, d)
        self.q_gain = nn.Parameter(torch.full((h,), float(cfg.qk_gain_init)))
        self.rotary = Rotary(cfg, cfg.rope_dims)
        self.xsa = xsa

    def forward(self, x: Tensor, q_from: int = 0) -> Tensor:
        """Causal attention; with `q_from` > 0 only positions q_from.. produce outputs (they still
        attend to every earlier position): all a scoring pass needs from the last entry."""
        b, t, d = x.shape
        h, hkv, hd = self.num_heads, self.num_kv_heads, self.head_dim
        tq = t - q_from
        q = self.c_q(x[:, q_from:] if q_from else x).view(b, tq, h, hd)
        k = self.c_k(x).view(b, t, hkv, hd)
        v = self.c_v(x).view(b, t, hkv, hd)
        q, k = rms_norm(q), rms_norm(k)
        q, k = self.rotary(q, t, q_from), self.rotary(k, t)
        q = q * self.q_gain.to(q.dtype)[None, None, :, None]
        qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if q_from:
            keys = torch.arange(t, device=x.device)
            mask = keys[None, :] <= keys[q_from:, None]
            y = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask, enable_gqa=hkv != h)
        else:
            y = F.scaled_dot_product_attention(qt, kt, vt, is_causal=True, enable_gqa=hkv != h)
        y = y.transpose(1, 2)  # (b, tq, h, hd)
        if self.xsa:
            # Remove from each head's output its component along the position's own value vector.
            yg = y.reshape(b, tq, hkv, h // hkv, hd)
            vn = F.normalize(v[:, q_from:], dim=-1).unsqueeze(-2)  # (b, tq, hkv, 1, hd)
            yg = yg - (yg * vn).sum(dim=-1, keepdim=True) * vn
            y = yg.reshape(b, tq, h, hd)
        return self.proj(y.reshape(b, tq, d))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc = CastedLinear(cfg.model_dim, cfg.hidden)
        self.proj = CastedLinear(cfg.hidden, cfg.model_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(F.leaky_relu(self.fc(x), 0.5).square())


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, index: int):
        super().__init__()
        d = cfg.model_dim
        self.attn_scale = nn.Parameter(torch.ones(d))
        self.mlp_scale = nn.Parameter(torch.ones(d))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(d), torch.zeros(d))))
        self.attn = CausalSelfAttention(cfg, xsa=index >= cfg.num_layers - cfg.sp8192_xsa_last_n)
        self.mlp = MLP(cfg)
        # The LN scale uses the physical index, so it is the same on every pass of a looped block.
        self.ln_scale = 1.0 / math.sqrt(index + 1) if cfg.ln_scale else 1.0
        start = cfg.sp8192_parallel_residual_start
        self.parallel = 0 <= start <= index

    def forward(self, x: Tensor, x0: Tensor, q_from: int = 0) -> Tensor:
        mix = self.resid_mix.to(x.dtype)
        x_in = mix[0] * x + mix[1] * x0
        a = self.attn(rms_norm(x_in) * self.ln_scale, q_from)
        if q_from:
            x_in = x_in[:, q_from:]
        if self.parallel:
            return (x_in + self.attn_scale.to(x.dtype) * a
                    + self.mlp_scale.to(x.dtype) * self.mlp(rms_norm(x_in) * self.ln_scale))
        h = x_in + self.attn_scale.to(x.dtype) * a
        return h + self.mlp_scale.to(x.dtype) * self.mlp(rms_norm(h) * self.ln_scale)


class GPT(HiddenHeadLM):
    def __init__(self, cfg: ModelConfig, init: bool = True):
        super().__init__()
        self.cfg = cfg
        d = cfg.model_dim
        self.encoder, self.decoder = cfg.split()
        n_skip = cfg.num_skips
        # Registration order is the reference's (skip_weights, skip_gates, tok_emb, blocks).
        self.skip_weights = nn.Parameter(torch.ones(n_skip, d))
        self.skip_gates = nn.Parameter(torch.zeros(n_skip, d)) if cfg.sp8192_skip_gates else None
        self.tok_emb = nn.Embedding(cfg.vocab_size, d)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.num_layers))
        if init:
            self._init_weights()

    def _init_weights(self) -> None:
        """A non-trivial random init (tests and benchmarks; evaluation loads real weights)."""
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.ndim == 2 and "skip" not in name and "resid_mix" not in name:
                    p.copy_(torch.randn(p.shape, generator=g) * (0.005 if name == "tok_emb.weight"
                                                                 else 1.0 / math.sqrt(p.shape[1])))

    def reference_dtypes(self) -> "GPT":
        """The reference's GPU parameter layout: tok_emb in bf16, everything else fp32."""
        self.float()
        self.tok_emb.to(torch.bfloat16)
        return self

    def hidden(self, ids: Tensor, q_from: int = 0) -> Tensor:
        """Final-normed hidden states (B, T - q_from, d); the last decoder entry computes outputs
        only from `q_from` on (earlier positions still serve as keys and values)."""
        x = rms_norm(self.tok_emb(ids))
        x0 = x
        skips: list[Tensor] = []
        for i in self.encoder:
            x = self.blocks[i](x, x0)
            skips.append(x)
        last = len(self.decoder) - 1
        for j, i in enumerate(self.decoder):
            if j < self.skip_weights.size(0) and skips:
                scaled = self.skip_weights[j].to(x.dtype) * skips.pop()
                if self.skip_gates is not None:
                    x = torch.lerp(scaled, x, torch.sigmoid(self.skip_gates[j].to(x.dtype)))
                else:
                    x = x + scaled
            x = self.blocks[i](x, x0, q_from if j == last else 0)
        return rms_norm(x)

    def head(self, h: Tensor) -> Tensor:
        """Softcapped tied logits for hidden states of any leading shape."""
        logits = F.linear(h, self.tok_emb.weight.to(h.dtype))
        return softcap(logits, self.cfg.logit_softcap)


def expected_state(cfg: ModelConfig) -> dict[str, tuple[tuple[int, ...], torch.dtype, str]]:
    """Every state-dict key with its shape, the reference's load dtype (bf16 for the embedding,
    which `deserialize` rounds) and the config key that decides the shape."""
    with torch.device("meta"):
        model = GPT(cfg, init=False)
    out = {}
    for name, t in model.state_dict().items():
        dtype = torch.bfloat16 if name == "tok_emb.weight" else torch.float32
        out[name] = (tuple(t.shape), dtype, _deciding_key(name))
    return out


def _deciding_key(name: str) -> str:
    if name.startswith("skip_"):
        return "model.sp8192_num_loops/sp8192_loop_start/sp8192_loop_end (skip rows) and model.model_dim"
    if name == "tok_emb.weight":
        return "model.vocab_size and model.model_dim"
    if ".mlp." in name:
        return "model.model_dim and model.sp8192_mlp_mult"
    if name.endswith("q_gain"):
        return "model.num_heads"
    if ".c_k." in name or ".c_v." in name:
        return "model.num_kv_heads, model.num_heads and model.model_dim"
    return "model.model_dim"
