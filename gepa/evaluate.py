"""Evaluation: standard, sliding-window and legal score-first TTT bits-per-byte.

Two scoring paths compute the same numbers:
- `fast` (default): windows are gathered from the token stream with one index operation into a
  reused buffer, and the head, softcap and cross-entropy run only on the positions that are
  scored;
- `plain`: the reference's loop shape (fresh padded batches, full logits for every position),
  kept as the baseline for equivalence tests and benchmarks.

Sums are float64; with torch.distributed initialised, windows and TTT sequences are split
contiguously across ranks as the reference does, TTT gradients are averaged every step and the
sums are all-reduced at the end.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from gepa.bpb import BpbAccumulator, target_bytes
from gepa.config import EvalConfig
from gepa.model import GPT
from gepa.results import ChunkRecord, EvalResult, Event
from gepa.tokenizer import ByteLUTs
from gepa.windows import WindowPlan, assign_chunks, plan_windows, split_contiguous

ChunkCallback = Callable[[ChunkRecord], None]

# Token budget per scoring batch of the fast path (at least eval.batch_seqs windows).
SCORE_BATCH_TOKENS_CPU = 8192
SCORE_BATCH_TOKENS_CUDA = 262144


class EvaluationCancelled(Exception):
    """Raised when `should_stop` asks the evaluation to end early."""


@dataclass
class _Ctx:
    model: GPT
    tokens: Tensor          # (total + 1,) int64 on device
    luts: ByteLUTs          # on device
    device: torch.device
    impl: str
    rank: int = 0
    world: int = 1
    token_losses: list[tuple[Tensor, Tensor]] | None = None
    score_batch_tokens: int = 0  # set per device in evaluate_model
    buf: dict = field(default_factory=dict)

    def autocast(self):
        if self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


# ---------------------------------------------------------------------------------------------
# window scoring


def _score_batch_fast(ctx: _Ctx, plan: WindowPlan, idx: Tensor, acc: BpbAccumulator) -> None:
    seq_len = plan.seq_len
    starts, lengths, score_from = plan.starts[idx], plan.lengths[idx], plan.score_from[idx]
    ar = torch.arange(seq_len)
    # Which positions are scored is known from the plan, so it is worked out on the host: no
    # data-dependent shapes (and no device synchronisation) on the accelerator.
    scored = (ar[None, :] < lengths[:, None]) & (ar[None, :] >= score_from[:, None])
    rows, cols = scored.nonzero(as_tuple=True)
    dev = ctx.device
    nb = dev.type == "cuda"
    ar_d = ctx.buf.get(("ar", seq_len))
    if ar_d is None:
        ar_d = ctx.buf[("ar", seq_len)] = ar.to(dev)
    starts_d, lengths_d = starts.to(dev, non_blocking=nb), lengths.to(dev, non_blocking=nb)
    rows_d, cols_d = rows.to(dev, non_blocking=nb), cols.to(dev, non_blocking=nb)
    pos = starts_d[:, None] + ar_d[None, :]
    valid = ar_d[None, :] < lengths_d[:, None]
    x = torch.where(valid, ctx.tokens[pos.clamp(max=ctx.tokens.numel() - 1)], 0)
    tgt_pos = pos[rows_d, cols_d] + 1
    y = ctx.tokens[tgt_pos]
    prev = x[rows_d, cols_d]
    q_from = int(score_from.min())
    with ctx.autocast():
        h = ctx.model.hidden(x, q_from=q_from)
        logits = ctx.model.head(h[rows_d, cols_d - q_from])
    nll = F.cross_entropy(logits.float(), y, reduction="none")
    acc.add(nll.double().sum(), rows.numel(), target_bytes(prev, y, ctx.luts).sum())
    if ctx.token_losses is not None:
        ctx.token_losses.append((tgt_pos.cpu(), nll.detach().double().cpu()))


def _score_batch_plain(ctx: _Ctx, plan: WindowPlan, idx: Tensor, acc: BpbAccumulator) -> None:
    seq_len = plan.seq_len
    b = idx.numel()
    x = torch.zeros(b, seq_len, dtype=torch.int64, device=ctx.device)
    y = torch.zeros(b, seq_len, dtype=torch.int64, device=ctx.device)
    spans = []
    for i, w in enumerate(idx.tolist()):
        ws, wlen, s = int(plan.starts[w]), int(plan.lengths[w]), int(plan.score_from[w])
        chunk = ctx.tokens[ws: ws + wlen + 1]
        x[i, :wlen] = chunk[:-1]
        y[i, :wlen] = chunk[1:]
        spans.append((ws, wlen, s))
    with ctx.autocast():
        logits = ctx.model.forward_logits(x)
    nll = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none").view(b, seq_len)
    for i, (ws, wlen, s) in enumerate(spans):
        part = nll[i, s:wlen]
        acc.add(part.to(torch.float64).sum(), wlen - s, target_bytes(x[i, s:wlen], y[i, s:wlen], ctx.luts).sum())
        if ctx.token_losses is not None:
            tpos = torch.arange(ws + s + 1, ws + wlen + 1)
            ctx.token_losses.append((tpos, part.detach().double().cpu()))


def _score_windows(ctx: _Ctx, plan: WindowPlan, windows: Tensor, batch_seqs: int, acc: BpbAccumulator) -> None:
    lo, hi = split_contiguous(windows.numel(), ctx.rank, ctx.world)
    mine = windows[lo:hi]
    if ctx.impl == "fast":
        # A window's score does not depend on which other windows share its batch, so the fast
        # path fills batches up to a token budget instead of the reference's batch_seqs.
        score = _score_batch_fast
        batch_seqs = max(batch_seqs, ctx.score_batch_tokens // plan.seq_len)
    else:
        score = _score_batch_plain
    with torch.inference_mode():
        for i in range(0, mine.numel(), batch_seqs):
            score(ctx, plan, mine[i: i + batch_seqs], acc)


# ---------------------------------------------------------------------------------------------
# TTT training


def _freeze(model: GPT, freeze_blocks: int) -> list[torch.nn.Parameter]:
    frozen = tuple(f"blocks.{i}." for i in range(freeze_blocks))
    params = []
    for name, p in model.named_parameters():
        p.requires_grad_(not any(f in name for f in frozen))
        if p.requires_grad:
            params.append(p)
    return params


def _make_optimizer(cfg: EvalConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    t = cfg.ttt
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum)
    return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)


def chunk_lr(cfg: EvalConfig, ci: int, num_chunks: int) -> float:
    t = cfg.ttt
    if t.lr_schedule == "constant" or num_chunks <= 1:
        return t.lr
    return t.lr * 0.5 * (1.0 + math.cos(math.pi * ci / (num_chunks - 1)))


def _train_chunk(ctx: _Ctx, cfg: EvalConfig, opt: torch.optim.Optimizer, params: list, ci: int,
                 total: int, lr: float) -> tuple[int, int] | None:
    """Train on chunk ci's already-scored tokens; returns the target range used (token indices)."""
    t, seq_len = cfg.ttt, cfg.eval.seq_len
    chunk_start = ci * t.chunk_tokens
    chunk_end = min((ci + 1) * t.chunk_tokens, total)
    chunk_seqs = (chunk_end - chunk_start) // seq_len
    if chunk_seqs <= 0:
        return None
    for group in opt.param_groups:
        group["lr"] = lr
    lo, hi = split_contiguous(chunk_seqs, ctx.rank, ctx.world)
    model = ctx.model
    model.train()
    used: tuple[int, int] | None = None
    for _ in range(t.epochs):
        for bs in range(lo, hi, t.batch_seqs):
            be = min(bs + t.batch_seqs, hi)
            start, end = chunk_start + bs * seq_len, chunk_start + be * seq_len
            if end + 1 > ctx.tokens.numel():
                continue
            x = ctx.tokens[start:end].view(-1, seq_len)
            y = ctx.tokens[start + 1: end + 1].view(-1, seq_len)
            opt.zero_grad(set_to_none=True)
            with ctx.autocast():
                loss = model(x, y)
            loss.backward()
            if ctx.world > 1:
                for p in params:
                    if p.grad is not None:
                        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                        p.grad.div_(ctx.world)
            if t.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
            opt.step()
            used = (start + 1 if used is None else min(used[0], start + 1), end + 1 if used is None else max(used[1], end + 1))
    model.eval()
    if used is None:
        return None
    # The union over ranks is the whole trained range; report it from the chunk geometry.
    return chunk_start + 1, chunk_start + chunk_seqs * seq_len + 1


# ---------------------------------------------------------------------------------------------
# public entry points


def evaluate_model(model: GPT, tokens: Tensor, luts: ByteLUTs, cfg: EvalConfig, *, device: str | torch.device = "cpu",
                   impl: str = "fast", on_chunk: ChunkCallback | None = None,
                   should_stop: Callable[[], bool] | None = None,
                   collect_token_losses: bool = False) -> EvalResult:
    """Score `tokens` (the truncated validation stream, total+1 ids) with `model` in `cfg.eval.mode`.

    In ttt mode the model's weights are adapted in place. With `collect_token_losses` the result
    carries `token_losses`: (target token index, nll) in scoring order, for legality tests."""
    dev = torch.device(device)
    rank, world = _world()
    ctx = _Ctx(model=model, tokens=tokens.to(dev, torch.int64), luts=luts.to(dev), device=dev, impl=impl,
               rank=rank, world=world, token_losses=[] if collect_token_losses else None,
               # Big batches feed a GPU; on a CPU they only overflow the caches (measured in bench/).
               score_batch_tokens=SCORE_BATCH_TOKENS_CUDA if dev.type == "cuda" else SCORE_BATCH_TOKENS_CPU)
    mode = cfg.eval.mode
    t0 = time.perf_counter()
    model.eval()
    if mode == "standard":
        result = _run_standard(ctx, cfg, on_chunk, should_stop)
    else:
        result = _run_sliding(ctx, cfg, on_chunk, should_stop, ttt=(mode == "ttt"))
    result.elapsed_s = time.perf_counter() - t0
    result.device = str(dev)
    if ctx.token_losses is not None:
        pos = torch.cat([p for p, _ in ctx.token_losses]) if ctx.token_losses else torch.empty(0, dtype=torch.int64)
        nll = torch.cat([n for _, n in ctx.token_losses]) if ctx.token_losses else torch.empty(0, dtype=torch.float64)
        result.token_losses = (pos, nll)  # type: ignore[attr-defined]
    return result


def _check_stop(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise EvaluationCancelled("evaluation cancelled")


def _finish(ctx: _Ctx, acc: BpbAccumulator) -> BpbAccumulator:
    if ctx.world == 1:
        return acc
    sums = torch.tensor([acc.nll_sum, float(acc.tokens), float(acc.bytes)], dtype=torch.float64,
                        device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(sums, op=dist.ReduceOp.SUM)
    return BpbAccumulator(float(sums[0]), int(sums[1]), int(sums[2]))


def _run_standard(ctx: _Ctx, cfg: EvalConfig, on_chunk, should_stop) -> EvalResult:
    seq_len, bsz = cfg.eval.seq_len, cfg.eval.batch_seqs
    total = ctx.tokens.numel() - 1
    n_seqs = total // seq_len
    lo, hi = split_contiguous(n_seqs, ctx.rank, ctx.world)
    seqs_per_chunk = max(1, cfg.ttt.chunk_tokens // seq_len)
    acc = BpbAccumulator()
    chunks: list[ChunkRecord] = []
    events: list[Event] = []
    with torch.inference_mode():
        for ci, c0 in enumerate(range(lo, hi, seqs_per_chunk)):
            _check_stop(should_stop)
            ts = time.perf_counter()
            before = acc.copy()
            c1 = min(c0 + seqs_per_chunk, hi)
            for bs in range(c0, c1, bsz):
                be = min(bs + bsz, c1)
                x = ctx.tokens[bs * seq_len: be * seq_len].view(-1, seq_len)
                y = ctx.tokens[bs * seq_len + 1: be * seq_len + 1].view(-1, seq_len)
                with ctx.autocast():
                    loss = ctx.model(x, y).detach()
                n = y.numel()
                acc.add(loss.to(torch.float64) * n, n, target_bytes(x.reshape(-1), y.reshape(-1), ctx.luts).sum())
                if ctx.token_losses is not None:
                    with ctx.autocast():
                        lg = ctx.model.forward_logits(x)
                    nll = F.cross_entropy(lg.float().reshape(-1, lg.size(-1)), y.reshape(-1), reduction="none")
                    ctx.token_losses.append((torch.arange(bs * seq_len + 1, be * seq_len + 1), nll.double().cpu()))
            events.append(Event("score", ci, c0 * seq_len + 1, c1 * seq_len + 1))
            rec = _chunk_record(ci, c1 - c0, acc, before, time.perf_counter() - ts, 0.0, 0.0)
            chunks.append(rec)
            if on_chunk:
                on_chunk(rec)
    acc = _finish(ctx, acc)
    return EvalResult(mode="standard", val_loss=acc.loss, val_bpb=acc.bpb, tokens_scored=acc.tokens,
                      bytes_scored=acc.bytes, elapsed_s=0.0, chunks=chunks, events=events, total_targets=total)


def _chunk_record(ci: int, windows: int, acc: BpbAccumulator, before: BpbAccumulator, score_s: float,
                  train_s: float, lr: float) -> ChunkRecord:
    return ChunkRecord(index=ci, windows=windows, tokens_scored=acc.tokens - before.tokens,
                       bytes_scored=acc.bytes - before.bytes, score_seconds=score_s, train_seconds=train_s,
                       running_loss=acc.loss, running_bpb=acc.bpb, lr=lr)


def _run_sliding(ctx: _Ctx, cfg: EvalConfig, on_chunk, should_stop, *, ttt: bool) -> EvalResult:
    e, t = cfg.eval, cfg.ttt
    total = ctx.tokens.numel() - 1
    plan = plan_windows(total, e.seq_len, e.stride, keep_first=ttt, tail=e.tail)
    num_chunks, groups = assign_chunks(plan, t.chunk_tokens)
    acc = BpbAccumulator()
    chunks: list[ChunkRecord] = []
    events: list[Event] = []
    opt = params = None
    if ttt and t.epochs > 0:
        params = _freeze(ctx.model, t.freeze_blocks)
        opt = _make_optimizer(cfg, params)
        ctx.model.set_fake_quant(t.fake_quant_int6)
    try:
        for ci, windows in enumerate(groups):
            if windows.numel() == 0:
                continue
            _check_stop(should_stop)
            before = acc.copy()
            ts = time.perf_counter()
            ctx.model.eval()
            _score_windows(ctx, plan, windows, e.batch_seqs, acc)
            score_s = time.perf_counter() - ts
            first = int((plan.starts[windows] + plan.score_from[windows]).min()) + 1
            end = int((plan.starts[windows] + plan.lengths[windows]).max()) + 1
            events.append(Event("score", ci, first, end))
            train_s, lr = 0.0, 0.0
            if opt is not None and ci != num_chunks - 1:
                tt = time.perf_counter()
                lr = chunk_lr(cfg, ci, num_chunks)
                used = _train_chunk(ctx, cfg, opt, params, ci, total, lr)
                train_s = time.perf_counter() - tt
                if used is not None:
                    events.append(Event("train", ci, used[0], used[1]))
            rec = _chunk_record(ci, int(windows.numel()), acc, before, score_s, train_s, lr)
            chunks.append(rec)
            if on_chunk:
                on_chunk(rec)
    finally:
        if ttt:
            ctx.model.set_fake_quant(False)
            for p in ctx.model.parameters():
                p.requires_grad_(True)
            ctx.model.eval()
    acc = _finish(ctx, acc)
    return EvalResult(mode="ttt" if ttt else "sliding", val_loss=acc.loss, val_bpb=acc.bpb, tokens_scored=acc.tokens,
                      bytes_scored=acc.bytes, elapsed_s=0.0, chunks=chunks, events=events, total_targets=total)


def build_model(cfg: EvalConfig, state: dict[str, Tensor], device: str | torch.device = "cpu") -> GPT:
    """Instantiate the GEPA model for `cfg` and load dequantized weights with strict=True."""
    dev = torch.device(device)
    with torch.device("meta"):
        model = GPT(cfg.model, init=False)
    model = model.to_empty(device=dev)
    model.float()
    model.load_state_dict(state, strict=True)
    if dev.type == "cuda":
        model.reference_dtypes()
    return model.eval()


def run_evaluation(artifact, cfg: EvalConfig, *, val_glob: str, tokenizer, device: str = "cpu",
                   on_chunk: ChunkCallback | None = None, should_stop: Callable[[], bool] | None = None,
                   max_tokens: int | None = None, impl: str = "fast") -> EvalResult:
    """Load a submitted artifact through the safe codec and evaluate it on the validation shards.

    Raises `gepa.errors.InputError` subclasses for anything the submitter can fix."""
    from gepa import codec, shards
    from gepa.model import expected_state
    from gepa.tokenizer import build_byte_luts, load_tokenizer

    if device == "cuda" and not torch.cuda.is_available():
        from gepa.errors import InputError

        raise InputError("--device cuda was requested but no CUDA device is available; use --device cpu")
    state = codec.load_state_dict(artifact, expected=expected_state(cfg.model))
    sp = load_tokenizer(tokenizer)
    luts = build_byte_luts(sp, cfg.model.vocab_size)
    tokens = limit_tokens(shards.load_validation_tokens(val_glob, cfg.eval.seq_len), cfg.eval.seq_len, max_tokens)
    if int(tokens.max()) >= cfg.model.vocab_size:
        from gepa.errors import DataError

        raise DataError(f"validation shards hold token id {int(tokens.max())}, outside model.vocab_size={cfg.model.vocab_size}")
    model = build_model(cfg, state, device)
    return evaluate_model(model, tokens, luts, cfg, device=device, impl=impl, on_chunk=on_chunk,
                          should_stop=should_stop)


def limit_tokens(tokens: Tensor, seq_len: int, max_tokens: int | None) -> Tensor:
    """Keep the first `max_tokens` targets, re-applying the reference's seq_len truncation."""
    if max_tokens is None or max_tokens >= tokens.numel() - 1:
        return tokens
    n = (max_tokens // seq_len) * seq_len + 1
    if n < 2:
        from gepa.errors import InputError

        raise InputError(f"--max-tokens {max_tokens} is below one sequence of {seq_len} tokens")
    return tokens[:n]


def count_chunks(cfg: EvalConfig, val_glob: str, max_tokens: int | None = None) -> int:
    """How many per-chunk records an evaluation will emit (for progress bars and ETAs), from the
    shard headers alone."""
    from gepa.shards import count_targets

    return chunk_count(cfg, count_targets(val_glob, cfg.eval.seq_len, max_tokens))


def chunk_count(cfg: EvalConfig, total: int) -> int:
    if cfg.eval.mode == "standard":
        n_seqs = total // cfg.eval.seq_len
        per = max(1, cfg.ttt.chunk_tokens // cfg.eval.seq_len)
        return -(-n_seqs // per)
    plan = plan_windows(total, cfg.eval.seq_len, cfg.eval.stride, keep_first=cfg.eval.mode == "ttt", tail=cfg.eval.tail)
    _, groups = assign_chunks(plan, cfg.ttt.chunk_tokens)
    return sum(1 for g in groups if g.numel())
