"""The GEPA language model: an 11-layer U-Net transformer with partial RoPE, GQA, XSA, value
embeddings, a bigram hash embedding, SmearGate and ReLU^2 MLPs.

State-dict keys, shapes and registration order match the reference submission so that a
dequantized artifact loads with `strict=True`. The module is built in fp32; `reference_dtypes()`
returns it to the reference's mixed layout (only `tok_emb.weight` in bf16), which the CUDA
path uses under bf16 autocast.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gepa.families.gepa.config import ModelConfig
from gepa.families.lm import HiddenHeadLM, softcap


def rms_norm(x: Tensor) -> Tensor:
    return F.rms_norm(x, (x.size(-1),))


def fake_quant_int6(w: Tensor) -> Tensor:
    """Per-row int6 fake quantisation with the reference's 1/31 scale floor (forward value only)."""
    w32 = w.float()
    scale = (w32.abs().amax(dim=1) / 31.0).clamp_min(1.0 / 31.0)
    return (torch.clamp(torch.round(w32 / scale[:, None]), -32, 31) * scale[:, None])


class CastedLinear(nn.Linear):
    """Bias-free linear layer whose weight is cast to the input dtype; optional int6 STE fake-quant
    in training mode (the reference's late-QAT path, which stays on during TTT training)."""

    fake_quant: bool = False

    def __init__(self, in_features: int, out_features: int, zero_init: bool = False):
        super().__init__(in_features, out_features, bias=False)
        self.zero_init = zero_init

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.to(x.dtype)
        if self.fake_quant and self.training and w.ndim == 2:
            with torch.no_grad():
                w_q = fake_quant_int6(self.weight).to(x.dtype)
            w = w + (w_q - w).detach()
        return F.linear(x, w)


class Rotary(nn.Module):
    """Partial rotary embedding on the first `dims` channels of each head, half-split pairing.

    For sequences longer than `train_seq_len` the base is rescaled NTK-style; the scaling depends
    on the length of the *input*, so callers must always feed full-length (padded) windows."""

    def __init__(self, dims: int, base: float, train_seq_len: int):
        super().__init__()
        self.dims = dims
        self.base = base
        self.train_seq_len = train_seq_len
        self.register_buffer("inv_freq", self._inv_freq(base), persistent=False)
        self._cache: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}

    def _inv_freq(self, base: float) -> Tensor:
        return 1.0 / (base ** (torch.arange(0, self.dims, 2, dtype=torch.float32) / self.dims))

    def cos_sin(self, seq_len: int, device: torch.device) -> tuple[Tensor, Tensor]:
        key = (seq_len, str(device))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        # Built outside inference mode so a table first made while scoring can serve TTT training.
        with torch.inference_mode(False), torch.no_grad():
            if seq_len > self.train_seq_len:
                base = self.base * (seq_len / self.train_seq_len) ** (self.dims / (self.dims - 2))
                inv_freq = self._inv_freq(base).to(device)
            else:
                # Recomputed rather than read from the buffer: a model materialised with
                # `to_empty` (build_model) has uninitialised non-persistent buffers.
                inv_freq = self._inv_freq(self.base).to(device)
            t = torch.arange(seq_len, device=device, dtype=torch.float32)
            freqs = torch.outer(t, inv_freq)
            hit = (freqs.cos()[None, None], freqs.sin()[None, None])
        self._cache[key] = hit
        return hit

    def forward(self, x: Tensor, seq_len: int | None = None, offset: int = 0) -> Tensor:
        """Rotate `x` whose positions are offset..offset+len-1 of a sequence of `seq_len`."""
        cos, sin = self.cos_sin(seq_len or x.size(-2), x.device)
        if offset or x.size(-2) != cos.size(-2):
            cos, sin = cos[..., offset: offset + x.size(-2), :], sin[..., offset: offset + x.size(-2), :]
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        r = self.dims
        rot, rest = x[..., :r], x[..., r:]
        x1, x2 = rot[..., : r // 2], rot[..., r // 2:]
        out = torch.cat((x1 * cos + x2 * sin, x2 * cos - x1 * sin), dim=-1)
        return out if rest.size(-1) == 0 else torch.cat((out, rest), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig, xsa: bool):
        super().__init__()
        d, h, hkv, hd = cfg.model_dim, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.num_heads, self.num_kv_heads, self.head_dim = h, hkv, hd
        self.q_gain = nn.Parameter(torch.full((h,), float(cfg.qk_gain_init)))
        self.c_q = CastedLinear(d, d)
        self.c_k = CastedLinear(d, hkv * hd)
        self.c_v = CastedLinear(d, hkv * hd)
        self.proj = CastedLinear(d, d, zero_init=True)
        rope_dims = cfg.rope_dims if 0 < cfg.rope_dims < hd else hd
        self.rotary = Rotary(rope_dims, cfg.rope_base, cfg.rope_train_seq_len)
        self.xsa = xsa

    def forward(self, x: Tensor, v_embed: Tensor | None, q_from: int = 0) -> Tensor:
        """Causal attention; with `q_from` > 0 only positions q_from.. produce outputs (they still
        attend to every earlier position), which is all a scoring pass needs from the last block."""
        b, t, d = x.shape
        h, hkv, hd = self.num_heads, self.num_kv_heads, self.head_dim
        tq = t - q_from
        q = self.c_q(x[:, q_from:] if q_from else x).view(b, tq, h, hd).transpose(1, 2)
        k = self.c_k(x).view(b, t, hkv, hd).transpose(1, 2)
        v = self.c_v(x).view(b, t, hkv, hd)
        if v_embed is not None:
            v = v + v_embed.view(b, t, hkv, hd)
        v = v.transpose(1, 2)
        q, k = rms_norm(q), rms_norm(k)
        q, k = self.rotary(q, seq_len=t, offset=q_from), self.rotary(k)
        q = q * self.q_gain.to(q.dtype)[None, :, None, None]
        if q_from:
            keys = torch.arange(t, device=x.device)
            mask = keys[None, :] <= keys[q_from:, None]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=hkv != h)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=hkv != h)
        y = y.transpose(1, 2)  # (b, tq, h, hd)
        if self.xsa:
            # Remove from each head output its component along the position's own value vector.
            yg = y.reshape(b, tq, hkv, h // hkv, hd)
            vn = F.normalize(v[:, :, q_from:].transpose(1, 2), dim=-1).unsqueeze(-2)  # (b, tq, hkv, 1, hd)
            yg = yg - (yg * vn).sum(dim=-1, keepdim=True) * vn
            y = yg.reshape(b, tq, h, hd)
        return self.proj(y.reshape(b, tq, d))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        hidden = cfg.hidden
        self.scale = nn.Parameter(torch.ones(hidden))
        self.bias = nn.Parameter(torch.zeros(hidden))
        self.up_proj = CastedLinear(cfg.model_dim, hidden)
        self.down_proj = CastedLinear(hidden, cfg.model_dim, zero_init=True)

    def forward(self, x: Tensor) -> Tensor:
        a = torch.relu(self.up_proj(x)).square()
        a = a * self.scale.to(a.dtype) + self.bias.to(a.dtype)
        return self.down_proj(a)


class ResidualBlock(nn.Module):
    """The 11-layer lineage's block step (gepa and march11l): residual mix with the embedding,
    scaled attention then scaled MLP on LN-scaled RMS norms. Subclasses build the layers."""

    attn: nn.Module
    mlp: nn.Module
    attn_scale: nn.Parameter
    mlp_scale: nn.Parameter
    resid_mix: nn.Parameter
    ln_scale: float

    def forward(self, x: Tensor, x0: Tensor, v_embed: Tensor | None, q_from: int = 0) -> Tensor:
        mix = self.resid_mix.to(x.dtype)
        x = mix[0] * x + mix[1] * x0
        attn = self.attn(rms_norm(x) * self.ln_scale, v_embed, q_from)
        if q_from:
            x = x[:, q_from:]
        x = x + self.attn_scale.to(x.dtype) * attn
        x = x + self.mlp_scale.to(x.dtype) * self.mlp(rms_norm(x) * self.ln_scale)
        return x


class Block(ResidualBlock):
    def __init__(self, cfg: ModelConfig, index: int):
        super().__init__()
        d = cfg.model_dim
        self.attn_scale = nn.Parameter(torch.ones(d))
        self.mlp_scale = nn.Parameter(torch.ones(d))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(d), torch.zeros(d))))
        self.attn = CausalSelfAttention(cfg, xsa=index >= cfg.num_layers - cfg.xsa_layers)
        self.mlp = MLP(cfg)
        self.ln_scale = 1.0 / math.sqrt(index + 1) if cfg.ln_scale else 1.0


class BigramHashEmbedding(nn.Module):
    """Hashed (previous, current) token pair embedding; position 0 of every row uses the reserved
    last bucket, whatever precedes it in the stream."""

    def __init__(self, buckets: int, dim: int, model_dim: int):
        super().__init__()
        self.buckets = buckets
        self.scale = nn.Parameter(torch.tensor(0.05))
        self.embed = nn.Embedding(buckets, dim)
        nn.init.zeros_(self.embed.weight)
        self.proj = CastedLinear(dim, model_dim, zero_init=True) if dim != model_dim else None

    def bucket_ids(self, ids: Tensor) -> Tensor:
        m = self.buckets - 1
        x = ids.to(torch.int32)
        out = torch.empty_like(x)
        out[..., 0] = m
        out[..., 1:] = torch.bitwise_xor(36313 * x[..., 1:], 27191 * x[..., :-1]) % m
        return out.long()

    def forward(self, ids: Tensor) -> Tensor:
        h = self.embed(self.bucket_ids(ids))
        if self.proj is not None:
            h = self.proj(h)
        return h * self.scale.to(h.dtype)


class ValueEmbedding(nn.Module):
    def __init__(self, vocab: int, dim: int, kv_dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.1))
        self.embed = nn.Embedding(vocab, dim)
        nn.init.normal_(self.embed.weight, std=0.01)
        self.proj = CastedLinear(dim, kv_dim) if dim != kv_dim else None

    def forward(self, ids: Tensor) -> Tensor:
        h = self.embed(ids)
        if self.proj is not None:
            h = self.proj(h)
        return h * self.scale.to(h.dtype)


class SmearGate(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        g = torch.sigmoid(self.gate.to(x.dtype))
        prev = F.pad(x[:, :-1], (0, 0, 1, 0))
        return (1 - g) * x + g * prev


class GPT(HiddenHeadLM):
    def __init__(self, cfg: ModelConfig, init: bool = True):
        super().__init__()
        self.cfg = cfg
        d, L = cfg.model_dim, cfg.num_layers
        self.n_enc = L // 2
        self.n_dec = L - self.n_enc
        n_skip = min(self.n_enc, self.n_dec)
        self.skip_weights = nn.Parameter(torch.ones(n_skip, d))
        self.skip_gates = nn.Parameter(torch.zeros(n_skip, d))
        self.tok_emb = nn.Embedding(cfg.vocab_size, d)
        self.bigram_emb = (
            BigramHashEmbedding(cfg.bigram_buckets, cfg.bigram_embed_dim, d) if cfg.bigram_buckets > 0 else None
        )
        self.smear_gate = SmearGate(d)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(L))
        if cfg.ve_enabled:
            self.ve_shared = ValueEmbedding(cfg.vocab_size, cfg.ve_dim, cfg.kv_dim)
            self.ve_layer_scales = nn.ParameterList(nn.Parameter(torch.ones(1)) for _ in cfg.ve_layers)
            self.ve_index = {layer: j for j, layer in enumerate(cfg.ve_layers) if layer < L}
        else:
            self.ve_shared = None
            self.ve_layer_scales = None
            self.ve_index = {}
        self.lm_head = None if cfg.tie_embeddings else CastedLinear(d, cfg.vocab_size, zero_init=True)
        if init:
            self._init_weights()

    # -- initialisation (used for demo/test artifacts; evaluation loads real weights) --
    def _init_weights(self) -> None:
        nn.init.normal_(self.tok_emb.weight, std=0.005)
        scale = 1.0 / math.sqrt(2 * self.cfg.num_layers)
        for name, mod in self.named_modules():
            if not isinstance(mod, nn.Linear):
                continue
            if getattr(mod, "zero_init", False):
                nn.init.zeros_(mod.weight)
            elif min(mod.weight.shape) >= 64:
                nn.init.orthogonal_(mod.weight, gain=1.0)
                if ".proj." in name or name.endswith(".proj"):
                    with torch.no_grad():
                        mod.weight.mul_(scale)

    def set_fake_quant(self, on: bool) -> None:
        for m in self.modules():
            if isinstance(m, CastedLinear):
                m.fake_quant = on

    def reference_dtypes(self) -> "GPT":
        """The reference's parameter layout: tok_emb in bf16, everything else fp32."""
        self.float()
        self.tok_emb.to(torch.bfloat16)
        return self

    # -- forward --
    def hidden(self, ids: Tensor, q_from: int = 0) -> Tensor:
        """Final-normed hidden states (B, T - q_from, d) before the head.

        Positions before `q_from` still serve as context, but the last block computes outputs only
        from `q_from` on: scoring needs no more, and it saves most of that block's work."""
        x = self.tok_emb(ids)
        if self.bigram_emb is not None:
            x = x + self.bigram_emb(ids)
        x = rms_norm(x)
        x = self.smear_gate(x)
        x0 = x
        ve = self.ve_shared(ids) if self.ve_shared is not None else None

        def v_embed(i: int) -> Tensor | None:
            j = self.ve_index.get(i)
            if j is None or ve is None:
                return None
            return ve * self.ve_layer_scales[j].to(ve.dtype)

        skips: list[Tensor] = []
        for i in range(self.n_enc):
            x = self.blocks[i](x, x0, v_embed(i))
            skips.append(x)
        for i in range(self.n_dec):
            bi = self.n_enc + i
            if skips:
                skip = skips.pop()
                g = torch.sigmoid(self.skip_gates[i].to(x.dtype))
                x = g * x + (1 - g) * (self.skip_weights[i].to(x.dtype) * skip)
            last = bi == len(self.blocks) - 1
            x = self.blocks[bi](x, x0, v_embed(bi), q_from if last else 0)
        return rms_norm(x)

    def head(self, h: Tensor) -> Tensor:
        """Softcapped logits for hidden states of any leading shape."""
        w = self.tok_emb.weight if self.lm_head is None else self.lm_head.weight
        if self.lm_head is not None and self.lm_head.fake_quant and self.training:
            logits = self.lm_head(h)
        else:
            logits = F.linear(h, w.to(h.dtype))
        return softcap(logits, self.cfg.logit_softcap)


def expected_state(cfg: ModelConfig) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Every state-dict key with its shape and the reference's dtype, without allocating weights."""
    with torch.device("meta"):
        model = GPT(cfg, init=False)
    out = {}
    for name, t in model.state_dict().items():
        dtype = torch.bfloat16 if name == "tok_emb.weight" else torch.float32
        out[name] = (tuple(t.shape), dtype)
    return out


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
