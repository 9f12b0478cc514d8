"""Shared evaluation drivers: standard, sliding-window and legal score-first TTT bits-per-byte.

Families call these with explicit specs; nothing here knows a family's config. A model passed in
provides `forward_logits(ids)` (softcapped logits), `forward(ids, targets)` (mean loss) and, for
the fast path, `hidden(ids, q_from)` and `head(h)`. Bytes come from `target_bytes`, the
per-position byte counts of the stream (`ValData.target_bytes`).

Two scoring paths compute the same numbers:
- `fast` (default): windows are gathered from the token stream with one index operation, and the
  head, softcap and cross-entropy run only on the positions that are scored;
- `plain`: the reference's loop shape (fresh padded batches, full logits for every position),
  kept as the baseline for equivalence tests and benchmarks.

Sums are float64; with torch.distributed initialised, windows and TTT sequences are split
contiguously across ranks as the references do, TTT gradients are averaged every step and the
sums are all-reduced at the end.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from gepa.bpb import BpbAccumulator
from gepa.errors import InputError
from gepa.results import ChunkRecord, EvalResult, Event
from gepa.windows import WindowPlan, align, assign_chunks, plan_windows, split_contiguous

ChunkCallback = Callable[[ChunkRecord], None]

# Token budget per scoring batch of the fast path (at least the spec's batch_seqs windows).
SCORE_BATCH_TOKENS_CPU = 8192
SCORE_BATCH_TOKENS_CUDA = 262144


class EvaluationCancelled(Exception):
    """Raised when `should_stop` asks the evaluation to end early."""


@dataclass(frozen=True)
class StandardSpec:
    """Non-overlapping `seq_len` sequences, `batch_seqs` per batch, each batch's mean loss summed
    in float64 times its token count (the references' accumulation); `chunk_seqs` sequences per
    progress record."""

    seq_len: int
    batch_seqs: int
    chunk_seqs: int


@dataclass(frozen=True)
class SlidingSpec:
    """Windows of `seq_len` every `stride` tokens; `chunk_tokens` groups them into chunks (the TTT
    chunks, or progress records without TTT) by where their scored range starts."""

    seq_len: int
    stride: int
    batch_seqs: int
    chunk_tokens: int = 32768
    tail: str = "reference"   # see gepa.windows.plan_windows
    keep_first: bool = False  # the TTT window list keeps ws == 0 even in a very short stream
    # A family whose reference lists windows differently supplies the list itself: total -> plan
    # (then seq_len, stride, tail and keep_first above are not used for planning).
    plan: Callable[[int], WindowPlan] | None = None
    # A second window rule scored alongside for comparison only (a record's own rule that leaves
    # targets unscored): total -> its plan, or None when there is nothing to compare. Its figures
    # go to `EvalResult.extra[compare_label]`; they are never the result.
    compare: Callable[[int], WindowPlan | None] | None = None
    compare_label: str = "compare"

    def windows(self, total: int) -> WindowPlan:
        if self.plan is not None:
            return self.plan(total)
        return plan_windows(total, self.seq_len, self.stride, keep_first=self.keep_first, tail=self.tail)


@dataclass(frozen=True)
class TTTSpec:
    """Score-first TTT over the sliding spec's chunks: every chunk is scored with the current
    weights, then (except the last) trained on for `epochs` passes of `seq_len` sequences cut
    from the chunk's own tokens.

    trainable(model) -> parameters to adapt (the rest get requires_grad False);
    optimizer(params) -> the optimizer, built once for the whole pass;
    lr(ci, num_chunks) -> the learning rate for chunk ci;
    set_train_mode(model, on) -> family hook around training (e.g. fake quantisation)."""

    epochs: int
    batch_seqs: int
    grad_clip: float
    trainable: Callable[[nn.Module], list[nn.Parameter]]
    optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer]
    lr: Callable[[int, int], float]
    set_train_mode: Callable[[nn.Module, bool], None] = lambda model, on: None


def cosine_lr(base: float, ci: int, num_chunks: int) -> float:
    """The references' schedule: cosine from `base` at the first chunk to 0 at the last."""
    if num_chunks <= 1:
        return base
    return base * 0.5 * (1.0 + math.cos(math.pi * ci / (num_chunks - 1)))


@dataclass
class _Side:
    """The comparison rule's share of the windows being scored: per window of the scored plan, the
    positions [lo, hi) the rule scores there (host tensors), and its own sums."""

    lo: Tensor
    hi: Tensor
    acc: BpbAccumulator


@dataclass
class _Ctx:
    model: nn.Module
    tokens: Tensor          # (total + 1,) int64 on device
    target_bytes: Tensor    # (total + 1,) int64 on device
    device: torch.device
    impl: str
    rank: int = 0
    world: int = 1
    token_losses: list[tuple[Tensor, Tensor]] | None = None
    score_batch_tokens: int = 0
    buf: dict = field(default_factory=dict)
    side: _Side | None = None

    def autocast(self):
        if self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def device_of(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was requested but no CUDA device is available; use --device cpu")
    return dev


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
    q_from = int(score_from.min())
    with ctx.autocast():
        h = ctx.model.hidden(x, q_from=q_from)
        logits = ctx.model.head(h[rows_d, cols_d - q_from])
    nll = F.cross_entropy(logits.float(), y, reduction="none")
    acc.add(nll.double().sum(), rows.numel(), ctx.target_bytes[tgt_pos].sum())
    if ctx.token_losses is not None:
        ctx.token_losses.append((tgt_pos.cpu(), nll.detach().double().cpu()))
    side = ctx.side
    if side is not None:
        sel = (cols >= side.lo[idx][rows]) & (cols < side.hi[idx][rows])
        if bool(sel.any()):
            sel_d = sel.to(dev, non_blocking=nb)
            side.acc.add(nll[sel_d].double().sum(), int(sel.sum()), ctx.target_bytes[tgt_pos[sel_d]].sum())


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
        spans.append((w, ws, wlen, s))
    with ctx.autocast():
        logits = ctx.model.forward_logits(x)
    nll = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none").view(b, seq_len)
    for i, (w, ws, wlen, s) in enumerate(spans):
        part = nll[i, s:wlen]
        tpos = torch.arange(ws + s + 1, ws + wlen + 1, device=ctx.device)
        acc.add(part.to(torch.float64).sum(), wlen - s, ctx.target_bytes[tpos].sum())
        if ctx.token_losses is not None:
            ctx.token_losses.append((tpos.cpu(), part.detach().double().cpu()))
        if ctx.side is not None and ctx.side.hi[w] > ctx.side.lo[w]:
            lo, hi = int(ctx.side.lo[w]), int(ctx.side.hi[w])
            ctx.side.acc.add(nll[i, lo:hi].to(torch.float64).sum(), hi - lo,
                             ctx.target_bytes[ws + lo + 1: ws + hi + 1].sum())


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


def freeze_all_but(model: nn.Module, params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    """requires_grad only for `params`; returns them in model order."""
    keep = {id(p) for p in params}
    out = []
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
        if id(p) in keep:
            out.append(p)
    return out


def _train_chunk(ctx: _Ctx, spec: TTTSpec, seq_len: int, chunk_tokens: int, opt: torch.optim.Optimizer,
                 params: list, ci: int, total: int, lr: float) -> tuple[int, int] | None:
    """Train on chunk ci's already-scored tokens; returns the target range used (token indices)."""
    chunk_start = ci * chunk_tokens
    chunk_end = min((ci + 1) * chunk_tokens, total)
    chunk_seqs = (chunk_end - chunk_start) // seq_len
    if chunk_seqs <= 0:
        return None
    for group in opt.param_groups:
        group["lr"] = lr
    lo, hi = split_contiguous(chunk_seqs, ctx.rank, ctx.world)
    model = ctx.model
    model.train()
    trained = False
    for _ in range(spec.epochs):
        for bs in range(lo, hi, spec.batch_seqs):
            be = min(bs + spec.batch_seqs, hi)
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
            if spec.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, spec.grad_clip)
            opt.step()
            trained = True
    model.eval()
    if not trained:
        return None
    # The union over ranks is the whole trained range; report it from the chunk geometry.
    return chunk_start + 1, chunk_start + chunk_seqs * seq_len + 1


# ---------------------------------------------------------------------------------------------
# public entry points


def evaluate_model(model: nn.Module, tokens: Tensor, target_bytes: Tensor, *, mode: str,
                   standard: StandardSpec | None = None, sliding: SlidingSpec | None = None,
                   ttt: TTTSpec | None = None, device: str | torch.device = "cpu", impl: str = "fast",
                   on_chunk: ChunkCallback | None = None, should_stop: Callable[[], bool] | None = None,
                   collect_token_losses: bool = False) -> EvalResult:
    """Score `tokens` (the stream as the procedure uses it, total+1 ids) with `model`.

    mode "standard" needs `standard`; "sliding" needs `sliding`; "ttt" needs `sliding` and `ttt`
    (the model's weights are adapted in place). With `collect_token_losses` the result carries
    `token_losses`: (target token index, nll) in scoring order, for legality tests."""
    dev = device_of(device)
    rank, world = _world()
    ctx = _Ctx(model=model, tokens=tokens.to(dev, torch.int64), target_bytes=target_bytes.to(dev, torch.int64),
               device=dev, impl=impl, rank=rank, world=world, token_losses=[] if collect_token_losses else None,
               # Big batches feed a GPU; on a CPU they only overflow the caches (measured in bench/).
               score_batch_tokens=SCORE_BATCH_TOKENS_CUDA if dev.type == "cuda" else SCORE_BATCH_TOKENS_CPU)
    t0 = time.perf_counter()
    model.eval()
    if mode == "standard":
        assert standard is not None
        result = _run_standard(ctx, standard, on_chunk, should_stop)
    else:
        assert sliding is not None and (mode == "sliding" or ttt is not None)
        result = _run_sliding(ctx, sliding, ttt if mode == "ttt" else None, on_chunk, should_stop, mode)
    result.elapsed_s = time.perf_counter() - t0
    result.device = str(dev)
    if ctx.token_losses is not None:
        result.token_losses = collect(ctx.token_losses)  # type: ignore[attr-defined]
    return result


def collect(token_losses: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """(positions, nll) concatenated in scoring order."""
    if not token_losses:
        return torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.float64)
    return torch.cat([p for p, _ in token_losses]), torch.cat([n for _, n in token_losses])


def check_stop(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise EvaluationCancelled("evaluation cancelled")


def finish(acc: BpbAccumulator, device: torch.device, world: int) -> BpbAccumulator:
    """All-reduce the three sums across ranks (a no-op in one process)."""
    if world == 1:
        return acc
    sums = torch.tensor([acc.nll_sum, float(acc.tokens), float(acc.bytes)], dtype=torch.float64,
                        device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(sums, op=dist.ReduceOp.SUM)
    return BpbAccumulator(float(sums[0]), int(sums[1]), int(sums[2]))


def chunk_record(ci: int, windows: int, acc: BpbAccumulator, before: BpbAccumulator, score_s: float,
                 train_s: float, lr: float) -> ChunkRecord:
    return ChunkRecord(index=ci, windows=windows, tokens_scored=acc.tokens - before.tokens,
                       bytes_scored=acc.bytes - before.bytes, score_seconds=score_s, train_seconds=train_s,
                       running_loss=acc.loss, running_bpb=acc.bpb, lr=lr)


def _run_standard(ctx: _Ctx, spec: StandardSpec, on_chunk, should_stop) -> EvalResult:
    seq_len, bsz = spec.seq_len, spec.batch_seqs
    total = ctx.tokens.numel() - 1
    n_seqs = total // seq_len
    lo, hi = split_contiguous(n_seqs, ctx.rank, ctx.world)
    seqs_per_chunk = max(1, spec.chunk_seqs)
    acc = BpbAccumulator()
    chunks: list[ChunkRecord] = []
    events: list[Event] = []
    with torch.inference_mode():
        for ci, c0 in enumerate(range(lo, hi, seqs_per_chunk)):
            check_stop(should_stop)
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
                acc.add(loss.to(torch.float64) * n, n, ctx.target_bytes[bs * seq_len + 1: be * seq_len + 1].sum())
                if ctx.token_losses is not None:
                    with ctx.autocast():
                        lg = ctx.model.forward_logits(x)
                    nll = F.cross_entropy(lg.float().reshape(-1, lg.size(-1)), y.reshape(-1), reduction="none")
                    ctx.token_losses.append((torch.arange(bs * seq_len + 1, be * seq_len + 1), nll.double().cpu()))
            events.append(Event("score", ci, c0 * seq_len + 1, c1 * seq_len + 1))
            rec = chunk_record(ci, c1 - c0, acc, before, time.perf_counter() - ts, 0.0, 0.0)
            chunks.append(rec)
            if on_chunk:
                on_chunk(rec)
    acc = finish(acc, ctx.device, ctx.world)
    return EvalResult(mode="standard", val_loss=acc.loss, val_bpb=acc.bpb, tokens_scored=acc.tokens,
                      bytes_scored=acc.bytes, elapsed_s=0.0, chunks=chunks, events=events, total_targets=total)


def _run_sliding(ctx: _Ctx, spec: SlidingSpec, ttt: TTTSpec | None, on_chunk, should_stop, mode: str) -> EvalResult:
    total = ctx.tokens.numel() - 1
    plan = spec.windows(total)
    num_chunks, groups = assign_chunks(plan, spec.chunk_tokens)
    other = spec.compare(total) if spec.compare is not None else None
    if other is not None:
        # Only a plain pass can host a comparison: after a TTT update the weights have moved.
        assert ttt is None, "a comparison rule needs a sliding evaluation without TTT"
        shared = align(other, plan)
        if shared is not None:
            ctx.side = _Side(shared[0], shared[1], BpbAccumulator())
    acc = BpbAccumulator()
    chunks: list[ChunkRecord] = []
    events: list[Event] = []
    opt = params = None
    if ttt is not None and ttt.epochs > 0:
        params = freeze_all_but(ctx.model, ttt.trainable(ctx.model))
        opt = ttt.optimizer(params)
        ttt.set_train_mode(ctx.model, True)
    try:
        for ci, windows in enumerate(groups):
            if windows.numel() == 0:
                continue
            check_stop(should_stop)
            before = acc.copy()
            ts = time.perf_counter()
            ctx.model.eval()
            _score_windows(ctx, plan, windows, spec.batch_seqs, acc)
            score_s = time.perf_counter() - ts
            first = int((plan.starts[windows] + plan.score_from[windows]).min()) + 1
            end = int((plan.starts[windows] + plan.lengths[windows]).max()) + 1
            events.append(Event("score", ci, first, end))
            train_s, lr = 0.0, 0.0
            if opt is not None and ci != num_chunks - 1:
                tt = time.perf_counter()
                lr = ttt.lr(ci, num_chunks)
                used = _train_chunk(ctx, ttt, spec.seq_len, spec.chunk_tokens, opt, params, ci, total, lr)
                train_s = time.perf_counter() - tt
                if used is not None:
                    events.append(Event("train", ci, used[0], used[1]))
            rec = chunk_record(ci, int(windows.numel()), acc, before, score_s, train_s, lr)
            chunks.append(rec)
            if on_chunk:
                on_chunk(rec)
    finally:
        if ttt is not None:
            ttt.set_train_mode(ctx.model, False)
            for p in ctx.model.parameters():
                p.requires_grad_(True)
            ctx.model.eval()
    acc = finish(acc, ctx.device, ctx.world)
    extra = {spec.compare_label: _compare(ctx, spec, other, should_stop)} if other is not None else {}
    return EvalResult(mode=mode, val_loss=acc.loss, val_bpb=acc.bpb, tokens_scored=acc.tokens,
                      bytes_scored=acc.bytes, elapsed_s=0.0, chunks=chunks, events=events, total_targets=total,
                      unscored_targets=plan.unscored_targets(), extra=extra)


def _compare(ctx: _Ctx, spec: SlidingSpec, other: WindowPlan, should_stop) -> dict:
    """The comparison rule's figures: read off the scored windows when its windows are among them,
    else from a pass over its own windows (whose per-window losses are the same numbers)."""
    shared = ctx.side is not None
    if shared:
        side_acc, ctx.side = ctx.side.acc, None
    else:
        check_stop(should_stop)
        side_acc = BpbAccumulator()
        _score_windows(ctx, other, torch.arange(len(other)), spec.batch_seqs, side_acc)
    side_acc = finish(side_acc, ctx.device, ctx.world)
    return {"tail": spec.tail, "val_loss": side_acc.loss, "val_bpb": side_acc.bpb, "tokens_scored": side_acc.tokens,
            "bytes_scored": side_acc.bytes, "unscored_targets": other.unscored_targets(), "windows": len(other),
            "extra_pass": not shared}


def count_chunks(mode: str, total: int, *, standard: StandardSpec | None = None,
                 sliding: SlidingSpec | None = None) -> int:
    """How many chunk records `evaluate_model` will emit for a stream of `total` targets."""
    if mode == "standard":
        assert standard is not None
        n_seqs = total // standard.seq_len
        return -(-n_seqs // max(1, standard.chunk_seqs))
    assert sliding is not None
    _, groups = assign_chunks(sliding.windows(total), sliding.chunk_tokens)
    return sum(1 for g in groups if g.numel())


def truncate(tokens: Tensor, seq_len: int, max_tokens: int | None = None) -> Tensor:
    """The references' cut to floor((N-1)/seq_len)*seq_len + 1 tokens; with `max_tokens`, first
    to that many targets (demos), re-applying the cut."""
    n = tokens.numel()
    if max_tokens is not None and max_tokens < n - 1:
        n = max_tokens + 1
    keep = ((n - 1) // seq_len) * seq_len + 1
    if keep < 2:
        raise InputError(f"the validation stream{' cut to --max-tokens' if max_tokens else ''} holds "
                         f"fewer than one sequence of {seq_len} tokens")
    return tokens[:keep]
