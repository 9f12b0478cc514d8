"""Per-document LoRA test-time training, as the LoRA_TTT record scores it (spec §8).

The stream is cut into documents at BOS (each one includes the next document's BOS, so every token
after the first BOS is predicted exactly once). Documents are sorted by chunk count and batched;
each document of a batch has its own rank-r adapters on the head and on every block's q and v
projections. Chunk by chunk, every document's chunk is **scored first** with the adapters as
they are, and only then does one Adam step train the adapters on that chunk's loss (a document's
last chunk is never trained on). A window never reaches outside its own document, and adapters
are fresh for every batch, so a target's score depends only on earlier tokens of its document.

The adapters' initialisation follows the reference's draw order from a generator seeded with
`init_seed` (spec §8.3), so the fixtures' numbers are reproduced; on a GPU the draws are still
made on the CPU generator, which makes a run independent of the device.

Two implementations give the same numbers:
- `plain`: the reference's loop shape (every document of the batch in every forward pass, padded
  to the batch's window width, full logits);
- `fast`: only the documents still active, trimmed to the widest active window, and the last
  block and head only from the first position any document scores or trains on.

The event log has one `score` event per document chunk (the stream target range scored) and one
`train` event per trained document chunk (the targets whose labels the Adam step used), in the
order they happened.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist
from torch import Tensor

from gepa.bpb import BpbAccumulator
from gepa.errors import DataError
from gepa.evaluate import check_stop, chunk_record, collect, device_of, finish
from gepa.families.baseline.model import BaselineGPT, LoraPair, LoraSet, new_lora
from gepa.results import ChunkRecord, EvalResult, Event
from gepa.windows import split_contiguous

BOS_ID = 1
# One progress record per this many scored targets (the fixture: 1; the full validation set: ~1900).
PROGRESS_TOKENS = 32768


@dataclass(frozen=True)
class LoraSpec:
    rank: int
    lr: float
    beta1: float
    beta2: float
    eps: float
    chunk: int        # C: targets per chunk
    context: int      # W: the longest window (context + chunk) a chunk is scored in
    batch_docs: int
    init_seed: int


def find_docs(tokens: Tensor) -> list[tuple[int, int]]:
    """(start, length) of every document: from a BOS through the next BOS inclusive; the last one
    runs to the end of the stream. Tokens before the first BOS are not scored. A lone BOS at the
    very end has nothing to predict and is left out (the reference would stop on an assertion)."""
    bos = (tokens == BOS_ID).nonzero(as_tuple=True)[0].tolist()
    n = int(tokens.numel())
    docs = []
    for i, start in enumerate(bos):
        end = bos[i + 1] + 1 if i + 1 < len(bos) else n
        if end - start >= 2:
            docs.append((start, end - start))
    return docs


def chunk_window(ci: int, pred_len: int, num_chunks: int, chunk: int, context: int) -> tuple[int, int, int, int]:
    """(window start, window length, chunk offset in the window, chunk length) of chunk ci of a
    document with `pred_len` targets, all document-relative (spec §8.2)."""
    cs = ci * chunk
    ce = pred_len if ci == num_chunks - 1 else (ci + 1) * chunk
    ws = max(0, ce - context)
    return ws, ce - ws, cs - ws, ce - cs


def progress_records(targets: int) -> int:
    return max(1, -(-max(targets, 0) // PROGRESS_TOKENS))


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _on_device(lora: LoraSet, device: torch.device) -> LoraSet:
    """The adapters as trainable leaf tensors on `device` (drawn on the CPU generator)."""
    def leaf(p: LoraPair) -> LoraPair:
        return LoraPair(p.A.to(device).requires_grad_(True), p.B.to(device).requires_grad_(True))

    return LoraSet(leaf(lora.head), [leaf(p) for p in lora.q], [leaf(p) for p in lora.v])


def run_lora_ttt(model: BaselineGPT, tokens: Tensor, target_bytes: Tensor, spec: LoraSpec, *,
                 device: str | torch.device = "cpu", impl: str = "fast",
                 on_chunk: Callable[[ChunkRecord], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, collect_token_losses: bool = False) -> EvalResult:
    """Score `tokens` (the whole stream, no truncation) with per-document LoRA TTT."""
    dev = device_of(device)
    rank, world = _world()
    docs = find_docs(tokens)
    if not docs:
        raise DataError(f"LoRA TTT needs documents that start with BOS (id {BOS_ID}); the validation stream has "
                        "none with a token to predict")
    lo, hi = split_contiguous(len(docs), rank, world)
    C, W, B = spec.chunk, spec.context, spec.batch_docs
    # A stable sort by chunk count, as the reference batches similar documents together.
    mine = sorted(docs[lo:hi], key=lambda d: (d[1] - 2) // C)
    total_targets = sum(length - 1 for _, length in docs)
    my_targets = sum(length - 1 for _, length in mine)
    n_records = progress_records(int(tokens.numel()) - 1)

    toks = tokens.to(dev, torch.int64)
    tbytes = target_bytes.to(dev, torch.int64)
    gen = torch.Generator().manual_seed(spec.init_seed)
    # The reference builds its full-size adapter set before the loop and re-draws it for every
    # full batch; the construction draws are spent all the same, so they are made here too.
    new_lora(model.cfg, B, spec.rank, "construct", gen)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()

    acc, last = BpbAccumulator(), BpbAccumulator()
    events: list[Event] = []
    chunks: list[ChunkRecord] = []
    token_losses: list[tuple[Tensor, Tensor]] | None = [] if collect_token_losses else None
    step = 0
    state = {"index": -1, "windows": 0, "score_s": 0.0, "train_s": 0.0}

    def report(final: bool = False) -> None:
        nonlocal last
        if final:
            if state["index"] >= n_records - 1 and not state["windows"]:
                return
            index = max(state["index"] + 1, n_records - 1)
        else:
            index = min(math.floor(acc.tokens / max(my_targets, 1) * n_records), n_records) - 1
            if index <= state["index"]:
                return
        rec = chunk_record(index, state["windows"], acc, last, state["score_s"], state["train_s"],
                           spec.lr if state["train_s"] else 0.0)
        state.update(index=index, windows=0, score_s=0.0, train_s=0.0)
        last = acc.copy()
        chunks.append(rec)
        if on_chunk:
            on_chunk(rec)

    t0 = time.perf_counter()
    try:
        for b0 in range(0, len(mine), B):
            batch = mine[b0: b0 + B]
            n = len(batch)
            lora = _on_device(new_lora(model.cfg, n, spec.rank, "reset" if n == B else "construct", gen), dev)
            opt = torch.optim.Adam(lora.parameters(), lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=spec.eps)
            pred = [length - 1 for _, length in batch]
            nch = [-(-p // C) for p in pred]
            for ci in range(max(nch)):
                check_stop(should_stop)
                ts = time.perf_counter()
                ctx_len = min((ci + 1) * C, W)
                train_off = ci * C - max(0, (ci + 1) * C - W)
                active = [b for b in range(n) if ci < nch[b]]
                trained = [b for b in range(n) if ci < nch[b] - 1]
                geo = {b: chunk_window(ci, pred[b], nch[b], C, W) for b in active}
                if impl == "plain":
                    rows, width, q0, sub = list(range(n)), ctx_len, 0, lora
                else:
                    rows, width = active, max(geo[b][1] for b in active)
                    q0 = min(geo[b][2] for b in active)
                    sub = lora if len(active) == n else lora.rows(torch.tensor(active, device=dev))
                x = torch.zeros(len(rows), width, dtype=torch.int64, device=dev)
                y = torch.zeros(len(rows), width, dtype=torch.int64, device=dev)
                for j, b in enumerate(rows):
                    if b in geo:
                        ws, wl = geo[b][0], geo[b][1]
                        seg = toks[batch[b][0] + ws: batch[b][0] + ws + wl + 1]
                        x[j, :wl], y[j, :wl] = seg[:-1], seg[1:]
                with torch.set_grad_enabled(bool(trained)), _autocast(dev):
                    ptl = model.token_losses(x, y, sub, q_from=q0)
                # Score first: every active document's chunk, with the adapters as they are now.
                with torch.no_grad():
                    for j, b in enumerate(rows):
                        if b not in geo:
                            continue
                        ws, _, co, cl = geo[b]
                        nll = ptl[j, co - q0: co - q0 + cl].detach().to(torch.float64)
                        first = batch[b][0] + ws + co + 1
                        acc.add(nll.sum(), cl, tbytes[first: first + cl].sum())
                        events.append(Event("score", step, first, first + cl))
                        if token_losses is not None:
                            token_losses.append((torch.arange(first, first + cl), nll.cpu()))
                state["windows"] += len(active)
                state["score_s"] += time.perf_counter() - ts
                # Then train: one Adam step on the mean loss of each document's (non-final) chunk.
                if trained:
                    tt = time.perf_counter()
                    span = ptl[:, train_off - q0: train_off - q0 + C]
                    if impl == "plain":
                        mask = torch.tensor([float(ci < nch[b] - 1) for b in range(n)], device=dev)
                        loss = (span.mean(dim=-1) * mask).sum()
                    else:
                        keep = torch.tensor([j for j, b in enumerate(rows) if b in trained], device=dev)
                        loss = span.index_select(0, keep).mean(dim=-1).sum()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    for b in trained:
                        first = batch[b][0] + ci * C + 1
                        events.append(Event("train", step, first, first + C))
                    state["train_s"] += time.perf_counter() - tt
                step += 1
                report()
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    report(final=True)
    acc = finish(acc, dev, world)
    result = EvalResult(mode="lora_ttt", val_loss=acc.loss, val_bpb=acc.bpb, tokens_scored=acc.tokens,
                        bytes_scored=acc.bytes, elapsed_s=time.perf_counter() - t0, chunks=chunks, events=events,
                        total_targets=total_targets, device=str(dev))
    if token_losses is not None:
        result.token_losses = collect(token_losses)  # type: ignore[attr-defined]
    return result
