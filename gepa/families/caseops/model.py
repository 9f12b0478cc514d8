"""The CaseOps records' GPT (spec §2, §5.2 step 4, §8), written from the family spec.

Tied 8192-token embedding (optionally with the BOS-fixed SmearGate), U-Net of looped blocks with
gated skips, two parallel lanes from `caseops_parallel_start_layer`, QK-norm + partial RoPE +
per-head q gain, XSA, dense or sparse attention output gates, LeakyReLU(0.5)² MLP, softcapped
logits. Attention runs either causally over whole rows (the LoRA-TTT path) or inside segments of
a packed row (`Segments`: documents, cut every `seq_len` tokens from their start), the
reference's FlashAttention varlen calls. Batched per-document LoRA adapters (`BatchedLoRA`)
plug into every slot for phased TTT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gepa.families.caseops.config import ModelConfig


def rms(x: Tensor) -> Tensor:
    return F.rms_norm(x, (x.size(-1),))


@dataclass
class Segments:
    """Attention segments of packed rows: `idx` (nseg, Lmax) positions into the flattened
    (B*T) row axis, `valid` (nseg, Lmax) which entries are real. Built once per batch."""

    idx: Tensor
    valid: Tensor
    flat_idx: Tensor  # idx[valid]


def segments(ids: Tensor, bos_id: int, max_len: int) -> Segments:
    """The reference's `_build_cu_seqlens` for each row of `ids` (B, T): a segment starts at
    position 0 and at every BOS, and is cut every `max_len` tokens from its own start."""
    B, T = ids.shape
    starts: list[int] = []
    lens: list[int] = []
    bos_rows = (ids == bos_id).nonzero().tolist()
    per_row: list[list[int]] = [[] for _ in range(B)]
    for r, p in bos_rows:
        per_row[r].append(p)
    for r in range(B):
        bounds = per_row[r]
        if not bounds or bounds[0] != 0:
            bounds = [0] + bounds
        bounds = bounds + [T]
        for s, e in zip(bounds[:-1], bounds[1:]):
            p = s
            while p < e:
                n = min(max_len, e - p)
                starts.append(r * T + p)
                lens.append(n)
                p += max_len
    lmax = max(lens)
    st = torch.tensor(starts, dtype=torch.int64)
    ln = torch.tensor(lens, dtype=torch.int64)
    ar = torch.arange(lmax, dtype=torch.int64)
    valid = ar[None, :] < ln[:, None]
    idx = torch.where(valid, st[:, None] + ar[None, :], 0)
    dev = ids.device
    idx, valid = idx.to(dev), valid.to(dev)
    return Segments(idx=idx, valid=valid, flat_idx=idx[valid])


class BatchedLoRA(nn.Module):
    """One rank-r adapter per document: A (bsz, r, in) ~ U(±1/sqrt(in)), B (bsz, out, r) = 0,
    output (x Aᵀ) Bᵀ times `scale`. The draws use the global torch RNG, as the reference's do."""

    def __init__(self, bsz: int, d_in: int, d_out: int, rank: int, scale: float, device: torch.device):
        super().__init__()
        self.bound = 1.0 / math.sqrt(d_in)
        self.scale = scale
        self.A = nn.Parameter(torch.empty(bsz, rank, d_in).uniform_(-self.bound, self.bound).to(device))
        self.B = nn.Parameter(torch.zeros(bsz, d_out, rank, device=device))

    def reset(self, keep_a: bool) -> None:
        with torch.no_grad():
            if not keep_a:
                # Drawn on the CPU generator then copied, so a CUDA run draws the same values.
                self.A.copy_(torch.empty(self.A.shape).uniform_(-self.bound, self.bound))
            self.B.zero_()

    def forward(self, x: Tensor) -> Tensor:
        out = (x @ self.A.transpose(1, 2)) @ self.B.transpose(1, 2)
        return out if self.scale == 1.0 else out * self.scale


class TTTAdapters(nn.Module):
    """Every adapter of one document group, created (and reset) in the reference's draw order:
    head, then q, v, k, mlp, o over all slots."""

    def __init__(self, bsz: int, cfg: ModelConfig, slots: int, rank: int, scale: float, k: bool, mlp: bool,
                 o: bool, device: torch.device):
        super().__init__()
        d, kvd = cfg.model_dim, cfg.kv_dim
        self.bsz = bsz

        def many(d_out: int) -> nn.ModuleList:
            return nn.ModuleList([BatchedLoRA(bsz, d, d_out, rank, scale, device) for _ in range(slots)])

        self.head = BatchedLoRA(bsz, d, cfg.vocab_size, rank, scale, device)
        self.q = many(d)
        self.v = many(kvd)
        self.k = many(kvd) if k else None
        self.mlp = many(d) if mlp else None
        self.o = many(d) if o else None

    def reset(self, keep_a: bool) -> None:
        self.head.reset(keep_a)
        for group in (self.q, self.v, self.k, self.mlp, self.o):
            if group is not None:
                for lora in group:
                    lora.reset(keep_a)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        d, kvd = cfg.model_dim, cfg.kv_dim
        self.H, self.Hkv, self.hd = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.rope_dims = cfg.rope_dims
        self.c_q = nn.Linear(d, d, bias=False)
        self.c_k = nn.Linear(d, kvd, bias=False)
        self.c_v = nn.Linear(d, kvd, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.q_gain = nn.Parameter(torch.full((self.H,), cfg.qk_gain_init))
        self.gate = cfg.caseops_attn_gate
        self.gate_window = cfg.caseops_gate_window
        self.gate_scale = cfg.sparse_scale
        if self.gate == "dense":
            self.attn_gate_w = nn.Parameter(torch.zeros(self.H, d))
        elif self.gate == "sparse":
            self.attn_gate_w = nn.Parameter(torch.zeros(self.H, cfg.caseops_gate_window))
        self.xsa = layer >= cfg.num_layers - cfg.xsa_layers

    def rope(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        r = self.rope_dims
        if r == 0:
            return x
        h = r // 2
        x1, x2, rest = x[..., :h], x[..., h:r], x[..., r:]
        return torch.cat((x1 * cos + x2 * sin, -x1 * sin + x2 * cos, rest), dim=-1)

    def forward(self, n: Tensor, ctx: "RowContext", lora: TTTAdapters | None, slot: int) -> Tensor:
        B, T, d = n.shape
        q = F.linear(n, self.c_q.weight)
        k = F.linear(n, self.c_k.weight)
        v = F.linear(n, self.c_v.weight)
        if lora is not None:
            q = q + lora.q[slot](n)
            if lora.k is not None:
                k = k + lora.k[slot](n)
            v = v + lora.v[slot](n)
        q = rms(q.view(B, T, self.H, self.hd))
        k = rms(k.view(B, T, self.Hkv, self.hd))
        v = v.view(B, T, self.Hkv, self.hd)
        q = self.rope(q, ctx.cos, ctx.sin)
        k = self.rope(k, ctx.cos, ctx.sin)
        q = q * self.q_gain.to(q.dtype)[None, None, :, None]
        y = ctx.attend(q, k, v)
        if self.xsa:
            g = self.H // self.Hkv
            yg = y.view(B, T, self.Hkv, g, self.hd)
            vn = F.normalize(v, dim=-1).unsqueeze(3)
            y = (yg - (yg * vn).sum(-1, keepdim=True) * vn).view(B, T, self.H, self.hd)
        if self.gate == "dense":
            y = y * torch.sigmoid(F.linear(n, self.attn_gate_w.to(n.dtype)))[..., None]
        elif self.gate == "sparse":
            gl = F.linear(n[..., :self.gate_window], self.attn_gate_w.to(n.dtype))
            y = y * torch.sigmoid(self.gate_scale * gl if self.gate_scale != 1.0 else gl)[..., None]
        out = F.linear(y.reshape(B, T, d), self.proj.weight)
        if lora is not None and lora.o is not None:
            out = out + lora.o[slot](n)  # the o-adapter reads the block input (spec quirk 9)
        return out


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.model_dim, cfg.mlp_hidden, bias=False)
        self.proj = nn.Linear(cfg.mlp_hidden, cfg.model_dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(F.leaky_relu(F.linear(x, self.fc.weight), 0.5).square(), self.proj.weight)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        d = cfg.model_dim
        self.attn = Attention(cfg, layer)
        self.mlp = MLP(cfg)
        self.attn_scale = nn.Parameter(torch.ones(d))
        self.mlp_scale = nn.Parameter(torch.ones(d))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(d), torch.zeros(d))))
        self.lnsf = 1.0 / math.sqrt(layer + 1) if cfg.ln_scale else 1.0

    def _mlp(self, mn: Tensor, lora: TTTAdapters | None, slot: int) -> Tensor:
        out = self.mlp(mn)
        if lora is not None and lora.mlp is not None:
            out = out + lora.mlp[slot](mn)
        return out

    def forward(self, x: Tensor, x0: Tensor, ctx: "RowContext", lora: TTTAdapters | None, slot: int) -> Tensor:
        mix = self.resid_mix.to(x.dtype)
        x_in = mix[0] * x + mix[1] * x0
        x = x_in + self.attn_scale.to(x.dtype) * self.attn(rms(x_in) * self.lnsf, ctx, lora, slot)
        return x + self.mlp_scale.to(x.dtype) * self._mlp(rms(x) * self.lnsf, lora, slot)


class RowContext:
    """What attention needs for one forward: the RoPE tables of the row length and the masking
    (causal over each row, or causal inside each segment of the packed rows)."""

    def __init__(self, T: int, cfg: ModelConfig, device: torch.device, segs: Segments | None):
        r = cfg.rope_dims
        if r:
            inv = 1.0 / (cfg.rope_base ** (torch.arange(0, r, 2, dtype=torch.float32, device=device) / r))
            ang = torch.outer(torch.arange(T, dtype=torch.float32, device=device), inv)
            self.cos, self.sin = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
        else:
            self.cos = self.sin = torch.ones(1, device=device)
        self.segs = segs
        self.groups = cfg.num_heads // cfg.num_kv_heads

    def _sdpa(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        # (N, L, H, hd) in, same out; kv heads repeated for GQA as the fixtures' shim does.
        if self.groups > 1:
            k = k.repeat_interleave(self.groups, dim=2)
            v = v.repeat_interleave(self.groups, dim=2)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return y.transpose(1, 2)

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        if self.segs is None:
            return self._sdpa(q, k, v)
        B, T, H, hd = q.shape
        s = self.segs
        flat = (lambda t: t.reshape(B * T, t.size(2), hd)[s.idx])
        ys = self._sdpa(flat(q), flat(k), flat(v))
        out = ys.new_zeros(B * T, H, hd)
        out[s.flat_idx] = ys[s.valid]
        return out.view(B, T, H, hd)


class CaseOpsGPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d, L = cfg.model_dim, cfg.num_layers
        self.tok_emb = nn.Embedding(cfg.vocab_size, d)
        self.blocks = nn.ModuleList([Block(cfg, i) for i in range(L)])
        self.encoder, self.decoder = cfg.slots
        S = cfg.num_skips
        self.skip_weights = nn.Parameter(torch.ones(S, d))
        self.skip_gates = nn.Parameter(torch.zeros(S, d)) if cfg.caseops_skip_gates else None
        self.parallel_post_lambdas = nn.Parameter(torch.ones(L, 2, 2))
        self.parallel_resid_lambdas = nn.Parameter(torch.full((L, 2), 1.1))
        self.smear = cfg.caseops_smear_gate == "bos_fix"
        if self.smear:
            self.smear_gate = nn.Linear(cfg.caseops_gate_window, 1, bias=False)
            self.smear_lambda = nn.Parameter(torch.zeros(1))
        self.bos_id = 1

    @property
    def num_slots(self) -> int:
        return len(self.encoder) + len(self.decoder)

    def _embed(self, ids: Tensor) -> Tensor:
        x = self.tok_emb.weight[ids]
        if self.smear:
            w = self.smear_gate.weight
            g = self.smear_lambda.to(x.dtype) * torch.sigmoid(F.linear(x[:, 1:, :w.size(1)], w.to(x.dtype)))
            g = g.masked_fill((ids[:, 1:] == self.bos_id)[..., None], 0.0)  # the BOS fix
            x = torch.cat((x[:, :1], x[:, 1:] + g * x[:, :-1]), dim=1)
        return rms(x)

    def _skip(self, j: int, x: Tensor, skips: list[Tensor]) -> Tensor:
        if j >= self.skip_weights.size(0) or not skips:
            return x
        s = self.skip_weights[j].to(x.dtype)[None, None, :] * skips.pop()
        if self.skip_gates is None:
            return x + s
        return torch.lerp(s, x, torch.sigmoid(self.skip_gates[j].to(x.dtype))[None, None, :])

    def _parallel(self, i: int, lane0: Tensor, lane1: Tensor, x0: Tensor, ctx: RowContext,
                  lora: TTTAdapters | None, slot: int) -> tuple[Tensor, Tensor]:
        blk = self.blocks[i]
        mix = blk.resid_mix.to(lane0.dtype)
        n = rms(mix[0] * lane0 + mix[1] * x0) * blk.lnsf
        a = blk.attn_scale.to(lane0.dtype) * blk.attn(n, ctx, lora, slot)
        m = blk.mlp_scale.to(lane0.dtype) * blk._mlp(rms(lane1) * blk.lnsf, lora, slot)
        rho = self.parallel_resid_lambdas[i].to(lane0.dtype)
        post = self.parallel_post_lambdas[i].to(lane0.dtype)
        new0 = rho[0] * lane0 + post[0, 0] * a + post[1, 0] * m
        new1 = rho[1] * lane1 + post[0, 1] * a + post[1, 1] * m
        return new0, new1

    def hidden(self, ids: Tensor, segs: Segments | None = None, lora: TTTAdapters | None = None) -> Tensor:
        """Final-normed hidden states (B, T, d)."""
        ctx = RowContext(ids.size(1), self.cfg, ids.device, segs)
        x = self._embed(ids)
        x0 = x
        skips: list[Tensor] = []
        slot = 0
        for i in self.encoder:
            x = self.blocks[i](x, x0, ctx, lora, slot)
            skips.append(x)
            slot += 1
        psl = self.cfg.caseops_parallel_start_layer
        lane0 = lane1 = None
        for j, i in enumerate(self.decoder):
            if psl > 0 and i >= psl:
                if lane0 is None:
                    lane0 = lane1 = x
                lane0 = self._skip(j, lane0, skips)
                lane0, lane1 = self._parallel(i, lane0, lane1, x0, ctx, lora, slot)
            else:
                x = self._skip(j, x, skips)
                x = self.blocks[i](x, x0, ctx, lora, slot)
            slot += 1
        if lane0 is not None:
            lane = self.cfg.caseops_parallel_final_lane
            x = lane0 if lane == "attn" else lane1 if lane == "mlp" else (lane0 + lane1) * 0.5
        return rms(x)

    def head(self, h: Tensor, lora: TTTAdapters | None = None) -> Tensor:
        """Softcapped logits of hidden states (..., d); `lora` adds the per-document head adapter
        (h must then be (bsz, n, d))."""
        logits = F.linear(h, self.tok_emb.weight.to(h.dtype))
        if lora is not None:
            logits = logits + lora.head(h)
        c = self.cfg.logit_softcap
        return c * torch.tanh(logits / c)

    def forward_logits(self, ids: Tensor, segs: Segments | None = None, lora: TTTAdapters | None = None) -> Tensor:
        return self.head(self.hidden(ids, segs, lora), lora)

    def forward(self, ids: Tensor, targets: Tensor, segs: Segments | None = None) -> Tensor:
        logits = self.forward_logits(ids, segs)
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1))


def expected_state(cfg: ModelConfig) -> dict[str, tuple]:
    """name -> (shape, dtype, config key that decides the shape) of every tensor the artifact must
    describe; the embedding is dequantized to bf16 as the reference's template does (§4.4)."""
    d, L, kvd, F_ = cfg.model_dim, cfg.num_layers, cfg.kv_dim, cfg.mlp_hidden
    S = cfg.num_skips
    f32 = torch.float32
    loops = "caseops_num_loops/caseops_loop_start/caseops_loop_end"
    out: dict[str, tuple] = {"tok_emb.weight": ((cfg.vocab_size, d), torch.bfloat16, "vocab_size/model_dim")}
    out["skip_weights"] = ((S, d), f32, loops)
    if cfg.caseops_skip_gates:
        out["skip_gates"] = ((S, d), f32, loops)
    out["parallel_post_lambdas"] = ((L, 2, 2), f32, "num_layers")
    out["parallel_resid_lambdas"] = ((L, 2), f32, "num_layers")
    if cfg.caseops_smear_gate == "bos_fix":
        out["smear_gate.weight"] = ((1, cfg.caseops_gate_window), f32, "caseops_gate_window")
        out["smear_lambda"] = ((1,), f32, "caseops_smear_gate")
    for i in range(L):
        p = f"blocks.{i}."
        out[p + "attn_scale"] = ((d,), f32, "model_dim")
        out[p + "mlp_scale"] = ((d,), f32, "model_dim")
        out[p + "resid_mix"] = ((2, d), f32, "model_dim")
        out[p + "attn.q_gain"] = ((cfg.num_heads,), f32, "num_heads")
        if cfg.caseops_attn_gate == "dense":
            out[p + "attn.attn_gate_w"] = ((cfg.num_heads, d), f32, "caseops_attn_gate=dense")
        elif cfg.caseops_attn_gate == "sparse":
            out[p + "attn.attn_gate_w"] = ((cfg.num_heads, cfg.caseops_gate_window), f32,
                                           "caseops_attn_gate=sparse/caseops_gate_window")
        out[p + "attn.c_q.weight"] = ((d, d), f32, "model_dim")
        out[p + "attn.c_k.weight"] = ((kvd, d), f32, "num_kv_heads")
        out[p + "attn.c_v.weight"] = ((kvd, d), f32, "num_kv_heads")
        out[p + "attn.proj.weight"] = ((d, d), f32, "model_dim")
        out[p + "mlp.fc.weight"] = ((F_, d), f32, "mlp_hidden")
        out[p + "mlp.proj.weight"] = ((d, F_), f32, "mlp_hidden")
    return out
