"""The CaseOps evaluation procedures: the standard eval and phased score-first TTT (spec §5).

- `standard`: the reference's `eval_val`: per simulated rank, batches of `local_batch_seqs`
  sequences forwarded as one packed row whose attention stays inside documents (cut every
  `seq_len` tokens from their start), trailing sequences of each rank dropped (quirk 3).
- `caseops_phased_ttt`: documents (each ending with the next BOS) sorted into groups, longest
  groups first; per group, batched per-document LoRA adapters score chunk ci of every document and
  only then train on it; after the groups holding the first `prefix_docs` documents, global SGD
  phases train the whole model on documents already scored. `prefix_docs: 0` is LoRA-only TTT.

Every target's score is taken before any update that used it; the event log records each score
and each update with its target range (global stream positions), and the legality tests check it.
Sums are float64 (`BpbAccumulator`); bytes are the canonical per-position counts.

`impl="fast"` computes the output head only where something is scored or trained (the last
`chunk_size` columns of a TTT window; position blocks of the standard eval, never the full
(T, vocab) logits); `impl="plain"` is the reference's shape (full logits, then slices).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gepa.bpb import BpbAccumulator
from gepa.errors import InputError
from gepa.evaluate import check_stop, chunk_record, cosine_lr
from gepa.families.caseops.config import EvalConfig, TTTConfig
from gepa.families.caseops.model import CaseOpsGPT, TTTAdapters, segments
from gepa.results import ChunkRecord, EvalResult, Event

HEAD_BLOCK_CPU = 1024      # positions per head/CE block in the fast standard eval
HEAD_BLOCK_CUDA = 8192


@dataclass
class _Run:
    model: CaseOpsGPT
    tokens: Tensor           # truncated stream, int64 on device
    tbytes: Tensor           # canonical bytes per position, int64 on device
    device: torch.device
    impl: str
    on_chunk: Callable[[ChunkRecord], None] | None
    should_stop: Callable[[], bool] | None
    collect: bool
    acc: BpbAccumulator = field(default_factory=BpbAccumulator)
    chunks: list[ChunkRecord] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    losses: list[tuple[Tensor, Tensor, int]] = field(default_factory=list)
    scored: Tensor | None = None  # bool per position: scored as a target
    log: list[str] = field(default_factory=list)

    def autocast(self):
        if self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def record(self, step: int, pos: Tensor, nll: Tensor) -> None:
        """Add scored targets (global positions `pos`, fp32 nll) to the sums."""
        self.acc.add(nll.double().sum(), int(pos.numel()), self.tbytes[pos].sum())
        self.scored[pos] = True
        if self.collect:
            self.losses.append((pos.cpu(), nll.detach().double().cpu(), step))

    def emit(self, index: int, before: BpbAccumulator, windows: int, score_s: float, train_s: float,
             lr: float) -> None:
        rec = chunk_record(index, windows, self.acc, before, score_s, train_s, lr)
        self.chunks.append(rec)
        if self.on_chunk:
            self.on_chunk(rec)


def _ce(logits: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1),
                           reduction="none").view(targets.shape)


# ---------------------------------------------------------------------------------------------
# standard


def standard_batches(total_seqs: int, world: int, local_batch_seqs: int) -> list[tuple[int, int]]:
    """(first, end) sequence of every batch, rank by rank, each rank's range truncated down to a
    multiple of local_batch_seqs (the reference's `eval_val`)."""
    out = []
    for r in range(world):
        s0, s1 = total_seqs * r // world, total_seqs * (r + 1) // world
        s1 = s0 + ((s1 - s0) // local_batch_seqs) * local_batch_seqs
        out.extend((b, min(b + local_batch_seqs, s1)) for b in range(s0, s1, local_batch_seqs))
    return out


def _standard(run: _Run, cfg: EvalConfig) -> None:
    e = cfg.eval
    sl = e.seq_len
    total_seqs = (run.tokens.numel() - 1) // sl
    block = HEAD_BLOCK_CUDA if run.device.type == "cuda" else HEAD_BLOCK_CPU
    with torch.inference_mode():
        for bi, (b0, b1) in enumerate(standard_batches(total_seqs, e.caseops_world_size, e.local_batch_seqs)):
            check_stop(run.should_stop)
            ts, before = time.perf_counter(), run.acc.copy()
            x = run.tokens[b0 * sl: b1 * sl][None]
            y = run.tokens[b0 * sl + 1: b1 * sl + 1]
            segs = segments(x, e.caseops_bos_id, sl)
            with run.autocast():
                if run.impl == "fast":
                    h = run.model.hidden(x, segs)[0]
                    nll = torch.cat([_ce(run.model.head(h[i:i + block]), y[i:i + block])
                                     for i in range(0, y.numel(), block)])
                else:
                    nll = _ce(run.model.forward_logits(x, segs)[0], y)
            pos = torch.arange(b0 * sl + 1, b1 * sl + 1, device=run.device)
            run.record(bi, pos, nll)
            run.events.append(Event("score", bi, b0 * sl + 1, b1 * sl + 1))
            run.emit(bi, before, b1 - b0, time.perf_counter() - ts, 0.0, 0.0)


# ---------------------------------------------------------------------------------------------
# phased TTT


def find_docs(tokens: Tensor, bos_id: int) -> list[tuple[int, int]]:
    """(start, length) of each document; a document ends with the next BOS (inclusive), the
    last one at the end of the stream."""
    bos = (tokens == bos_id).nonzero().flatten().tolist()
    n = tokens.numel()
    docs = []
    for i, s in enumerate(bos):
        end = bos[i + 1] + 1 if i + 1 < len(bos) else n
        if end - s >= 2:
            docs.append((s, end - s))
    return docs


def ttt_groups(docs: list[tuple[int, int]], batch_docs: int) -> list[tuple[int, list[tuple[int, int]]]]:
    """(original group index, documents) in processing order: documents sorted by length (stable),
    cut into groups, groups ordered by descending longest document (stable)."""
    ordered = sorted(docs, key=lambda d: d[1])
    groups = [ordered[i:i + batch_docs] for i in range(0, len(ordered), batch_docs)]
    indexed = list(enumerate(groups))
    indexed.sort(key=lambda g: -max(dl for _, dl in g[1]))
    return indexed


def _chunk_window(ci: int, pred_len: int, num_chunks: int, c: int, w: int) -> tuple[int, int, int, int]:
    end = pred_len if ci == num_chunks - 1 else (ci + 1) * c
    win_start = max(0, end - w)
    return win_start, end - win_start, ci * c - win_start, end - ci * c


def _lora_optimizer(t: TTTConfig, params) -> torch.optim.Optimizer:
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lora_lr, momentum=t.beta1, weight_decay=t.weight_decay)
    return torch.optim.AdamW(params, lr=t.lora_lr, betas=(t.beta1, t.beta2), eps=t.adam_eps,
                             weight_decay=t.weight_decay)


class _Adapters:
    """The reusable adapters of full-size groups and their optimizer (rebuilt after each phase)."""

    def __init__(self, model: CaseOpsGPT, t: TTTConfig, device: torch.device):
        self.model, self.t, self.device = model, t, device
        self.reusable, self.opt = self.build(t.batch_docs)

    def build(self, bsz: int) -> tuple[TTTAdapters, torch.optim.Optimizer]:
        t = self.t
        lora = TTTAdapters(bsz, self.model.cfg, self.model.num_slots, t.lora_rank, t.lora_scale, t.k_lora,
                           t.mlp_lora, t.o_lora, self.device)
        return lora, _lora_optimizer(t, list(lora.parameters()))

    def for_group(self, bsz: int) -> tuple[TTTAdapters, torch.optim.Optimizer]:
        if bsz != self.reusable.bsz:
            return self.build(bsz)
        self.reusable.reset(keep_a=self.t.warm_start_a)
        self.opt.state.clear()  # fresh moments and step count, as zeroing them does
        return self.reusable, self.opt


def _score_and_train_group(run: _Run, cfg: EvalConfig, batch: list[tuple[int, int]], lora: TTTAdapters,
                           opt: torch.optim.Optimizer, step0: int) -> int:
    t = cfg.caseops_ttt
    c, w = t.chunk_size, t.eval_seq_len
    bsz = len(batch)
    n = run.tokens.numel()
    pred = [dl - 1 for _, dl in batch]
    nchunks = [(p + c - 1) // c for p in pred]
    nct = torch.tensor(nchunks, device=run.device)
    step = step0
    for ci in range(max(nchunks)):
        check_stop(run.should_stop)
        ts, before = time.perf_counter(), run.acc.copy()
        starts = torch.zeros(bsz, dtype=torch.int64)
        wls = torch.zeros(bsz, dtype=torch.int64)
        offs = torch.zeros(bsz, dtype=torch.int64)
        lens = torch.zeros(bsz, dtype=torch.int64)
        for b, (ds, _) in enumerate(batch):
            if ci < nchunks[b]:
                ws, wl, off, ln = _chunk_window(ci, pred[b], nchunks[b], c, w)
                starts[b], wls[b], offs[b], lens[b] = ds + ws, wl, off, ln
        ctx = min((ci + 1) * c, w)
        o = ci * c - max(0, (ci + 1) * c - w)  # the generic offset the training loss uses (quirk 5)
        col = torch.arange(ctx + 1)
        idx = (starts[:, None] + col[None, :]).clamp(max=n - 1).to(run.device)
        valid = (col[None, :ctx] < wls[:, None]).to(run.device)
        gathered = run.tokens[idx]
        x = torch.where(valid, gathered[:, :ctx], 0)
        y = torch.where(valid, gathered[:, 1:], 0)
        needs_train = any(ci < k - 1 for k in nchunks)
        with torch.enable_grad() if needs_train else torch.no_grad(), run.autocast():
            h = run.model.hidden(x, None, lora)
            if run.impl == "fast":
                ptl = _ce(run.model.head(h[:, o:], lora), y[:, o:])      # columns [o, ctx)
                base = o
            else:
                ptl = _ce(run.model.head(h, lora), y)
                base = 0
        with torch.no_grad():
            for b, (ds, _) in enumerate(batch):
                if lens[b] <= 0:
                    continue
                a0 = int(offs[b]) - base
                run.record(step, torch.arange(int(starts[b]) + int(offs[b]) + 1,
                                              int(starts[b]) + int(offs[b]) + int(lens[b]) + 1, device=run.device),
                           ptl[b, a0:a0 + int(lens[b])].detach())
                first = ds + 1 + ci * c
                run.events.append(Event("score", step, first, first + int(lens[b])))
        score_s = time.perf_counter() - ts
        train_s = 0.0
        if needs_train:
            tt = time.perf_counter()
            mask = (nct - 1 > ci).float()
            per_doc = ptl[:, o - base: o - base + c].mean(dim=-1)
            for gi in range(t.grad_steps):
                if gi > 0:
                    with run.autocast():
                        hh = run.model.hidden(x, None, lora)
                        ptl2 = _ce(run.model.head(hh[:, o:], lora), y[:, o:])
                    per_doc = ptl2[:, :c].mean(dim=-1)
                opt.zero_grad(set_to_none=True)
                (per_doc * mask).sum().backward()
                opt.step()
            for b, (ds, _) in enumerate(batch):
                if ci < nchunks[b] - 1:
                    first = ds + 1 + ci * c
                    run.events.append(Event("train", step, first, first + c))
            train_s = time.perf_counter() - tt
        run.emit(step, before, bsz, score_s, train_s, t.lora_lr if needs_train else 0.0)
        step += 1
    return step


def _global_sgd(run: _Run, cfg: EvalConfig, stream: Tensor, phase: int, step: int) -> None:
    """Train every base parameter on the concatenated, already-scored documents (spec §5.2 step 6)."""
    t, e = cfg.caseops_ttt, cfg.eval
    model = run.model
    sl = e.seq_len
    total = stream.numel() - 1
    chunk = t.global_chunk_tokens
    num_chunks = (total + chunk - 1) // chunk if total > 0 else 0
    params = list(model.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.SGD(params, lr=t.global_lr, momentum=t.global_momentum)
    for ci in range(num_chunks):
        c0, c1 = ci * chunk, min((ci + 1) * chunk, total)
        if ci == num_chunks - 1 or t.global_epochs <= 0:
            continue
        seqs = (c1 - c0) // sl
        if seqs <= 0:
            continue
        warm = max(0, min(t.global_warmup_chunks, num_chunks - 1))
        if warm > 0 and ci < warm:
            lr = t.global_warmup_start_lr + (t.global_lr - t.global_warmup_start_lr) * (ci / max(warm - 1, 1))
        else:
            lr = cosine_lr(t.global_lr, max(ci - warm, 0), max(num_chunks - 1 - warm, 1) + 1)
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        for _ in range(t.global_epochs):
            for bs in range(0, seqs, t.global_batch_seqs):
                be = min(bs + t.global_batch_seqs, seqs)
                s, en = c0 + bs * sl, c0 + be * sl + 1
                if en > stream.numel():
                    continue
                xf, yf = stream[s:en - 1], stream[s + 1:en]
                opt.zero_grad(set_to_none=True)
                with torch.enable_grad(), run.autocast():
                    if t.global_respect_doc_boundaries:
                        loss = model(xf[None], yf[None], segments(xf[None], e.caseops_bos_id, sl))
                    else:
                        loss = model(xf.view(-1, sl), yf.view(-1, sl))
                loss.backward()
                if t.global_grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, t.global_grad_clip)
                opt.step()
        model.eval()
        run.log.append(f"tttg: phase {phase + 1} c{ci + 1}/{num_chunks} lr:{lr:.6f}")
    for p in params:
        p.requires_grad_(False)
    model.eval()


def _phased(run: _Run, cfg: EvalConfig) -> None:
    t, e = cfg.caseops_ttt, cfg.eval
    model = run.model
    docs = find_docs(run.tokens.cpu(), e.caseops_bos_id)
    prefix = max(0, min(len(docs), t.prefix_docs))
    phases = max(1, t.num_phases)
    bounds = [prefix * (p + 1) // phases for p in range(phases)]
    run.log.append(f"ttt_phased: total_docs:{len(docs)} prefix_docs:{prefix} suffix_docs:{len(docs) - prefix} "
                   f"num_phases:{phases} boundaries:{bounds}")
    for p in model.parameters():
        p.requires_grad_(False)
    if t.torch_seed is not None:
        torch.manual_seed(t.torch_seed)  # the LoRA A draws use the global generator (quirk 8)
    adapters = _Adapters(model, t, run.device)
    scored_docs: list[tuple[int, int, int, int]] = []
    done = prefix == 0
    phase, counter, step = 0, 0, 0
    for orig, batch in ttt_groups(docs, t.batch_docs):
        lora, opt = adapters.for_group(len(batch))
        step = _score_and_train_group(run, cfg, batch, lora, opt, step)
        if done:
            continue
        scored_docs.extend((orig, pos, ds, dl) for pos, (ds, dl) in enumerate(batch))
        counter += len(batch)
        if counter < bounds[phase]:
            continue
        chosen = sorted(scored_docs)[:bounds[phase]]
        stream = torch.cat([run.tokens[ds:ds + dl] for _, _, ds, dl in chosen]) if chosen \
            else run.tokens[:0]
        run.log.append(f"ttpp: phase:{phase + 1}/{phases} pd:{counter} gd:{len(chosen)}")
        if chosen:
            # Every document of the phase was scored in an earlier group.
            for _, _, ds, dl in chosen:
                run.events.append(Event("train", step, ds + 1, ds + dl))
        _global_sgd(run, cfg, stream, phase, step)
        adapters = _Adapters(model, t, run.device)
        phase += 1
        if phase >= phases:
            done = True


# ---------------------------------------------------------------------------------------------
# entry point


def run(model: CaseOpsGPT, tokens: Tensor, tbytes: Tensor, cfg: EvalConfig, *, device: torch.device,
        impl: str = "fast", on_chunk=None, should_stop=None, collect_token_losses: bool = False) -> EvalResult:
    """Score the (already truncated) stream `tokens` with `cfg.mode`; the model is adapted in place."""
    dev = torch.device(device)
    r = _Run(model=model, tokens=tokens.to(dev, torch.int64), tbytes=tbytes.to(dev, torch.int64), device=dev,
             impl=impl, on_chunk=on_chunk, should_stop=should_stop, collect=collect_token_losses)
    r.scored = torch.zeros(tokens.numel(), dtype=torch.bool, device=dev)
    model.bos_id = cfg.eval.caseops_bos_id
    t0 = time.perf_counter()
    model.eval()
    try:
        if cfg.mode == "standard":
            _standard(r, cfg)
        else:
            _phased(r, cfg)
    finally:
        for p in model.parameters():
            p.requires_grad_(False)
        model.eval()
    acc = r.acc
    if acc.tokens == 0:
        raise InputError(
            f"the {cfg.mode} evaluation scored no target: with eval.seq_len {cfg.eval.seq_len}, "
            f"eval.caseops_val_batch_tokens {cfg.eval.caseops_val_batch_tokens} and eval.caseops_world_size "
            f"{cfg.eval.caseops_world_size} each rank's share of the {tokens.numel() - 1:,} targets is shorter "
            "than one batch; use a smaller batch or world size (or more validation data)")
    res = EvalResult(mode=cfg.mode, val_loss=acc.loss, val_bpb=acc.bpb, tokens_scored=acc.tokens,
                     bytes_scored=acc.bytes, elapsed_s=time.perf_counter() - t0, chunks=r.chunks, events=r.events,
                     total_targets=tokens.numel() - 1, device=str(dev))
    res.scored_mask = r.scored.cpu()  # type: ignore[attr-defined]
    res.log = r.log  # type: ignore[attr-defined]
    if collect_token_losses:
        if r.losses:
            res.token_losses = (torch.cat([p for p, _, _ in r.losses]),  # type: ignore[attr-defined]
                                torch.cat([n for _, n, _ in r.losses]))
            res.token_steps = torch.cat([torch.full((p.numel(),), s) for p, _, s in r.losses])  # type: ignore
        else:
            res.token_losses = (torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.float64))
            res.token_steps = torch.empty(0, dtype=torch.int64)  # type: ignore[attr-defined]
    return res


def bpb(loss_sum: float, tokens: int, nbytes: int) -> float:
    return loss_sum / (math.log(2.0) * nbytes) if nbytes else float("nan")
