"""Multi-process evaluation on one node: one process per GPU with NCCL, or per CPU worker with
gloo (tests). Windows and TTT sequences are split across ranks inside `evaluate_model`; this
module only starts the ranks, hands each the same weights and returns rank 0's result."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gepa.config import EvalConfig
from gepa.results import EvalResult


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, backend: str, payload_path: str, out_path: str) -> None:
    from gepa.evaluate import build_model, evaluate_model

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    payload = torch.load(payload_path, weights_only=False)  # written by our own parent process
    device = f"cuda:{rank}" if backend == "nccl" else "cpu"
    if backend == "nccl":
        torch.cuda.set_device(rank)
    torch.set_num_threads(max(1, payload["threads"]))
    dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        model = build_model(payload["cfg"], payload["state"], device)
        result = evaluate_model(model, payload["tokens"], payload["luts"], payload["cfg"], device=device,
                                impl=payload["impl"])
        if rank == 0:
            torch.save(result, out_path)
    finally:
        dist.destroy_process_group()


def evaluate_on_ranks(world: int, cfg: EvalConfig, state: dict, tokens: torch.Tensor, luts, *,
                      backend: str | None = None, impl: str = "fast") -> EvalResult:
    """Run the evaluation on `world` local processes and return rank 0's (all-reduced) result."""
    backend = backend or ("nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= world else "gloo")
    with tempfile.TemporaryDirectory(prefix="golfcheck-ranks-") as tmp:
        payload_path = str(Path(tmp) / "payload.pt")
        out_path = str(Path(tmp) / "result.pt")
        threads = max(1, torch.get_num_threads() // world)
        torch.save({"cfg": cfg, "state": state, "tokens": tokens, "luts": luts, "impl": impl, "threads": threads},
                   payload_path)
        mp.start_processes(_rank_main, args=(world, _free_port(), backend, payload_path, out_path),
                           nprocs=world, join=True, start_method="spawn")
        return torch.load(out_path, weights_only=False)
