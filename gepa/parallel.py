"""Multi-process evaluation on one node: one process per GPU with NCCL, or per CPU worker with
gloo (tests). Work is split across ranks inside the family's procedures (contiguous shares of
windows, sequences or documents, sums all-reduced); this module only starts the ranks, hands each
the same family config, weights and data, and returns rank 0's result."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gepa import families
from gepa.families.base import FamilyConfig
from gepa.results import ChunkRecord, EvalResult, Event
from gepa.valdata import ValData


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, backend: str, payload_path: str, out_path: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    payload = torch.load(payload_path, weights_only=True)
    family = families.get(payload["family"])
    cfg = family.parse_config(payload["cfg"])
    data = ValData(tokens=payload["tokens"], target_bytes=payload["target_bytes"])
    device = f"cuda:{rank}" if backend == "nccl" else "cpu"
    if backend == "nccl":
        torch.cuda.set_device(rank)
    torch.set_num_threads(max(1, payload["threads"]))
    dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        model = family.build_model(cfg, payload["state"], torch.device(device))
        result = family.evaluate(model, data, cfg, device=torch.device(device), impl=payload["impl"],
                                 max_tokens=payload["max_tokens"])
        if rank == 0:
            Path(out_path).write_text(json.dumps(dataclasses.asdict(result)))
        dist.barrier()
    finally:
        dist.destroy_process_group()
    # gloo's background threads can abort the interpreter's teardown now and then ("terminate called
    # without an active exception"); the result is written, so leave without C++ destructors.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def evaluate_on_ranks(world: int, cfg: FamilyConfig, state: dict, data: ValData, *, backend: str | None = None,
                      impl: str = "fast", max_tokens: int | None = None) -> EvalResult:
    """Run the evaluation on `world` local processes and return rank 0's (all-reduced) result."""
    backend = backend or ("nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= world else "gloo")
    with tempfile.TemporaryDirectory(prefix="golfcheck-ranks-") as tmp:
        payload_path = str(Path(tmp) / "payload.pt")
        out_path = str(Path(tmp) / "result.pt")
        threads = max(1, torch.get_num_threads() // world)
        # Plain dicts and tensors only, so every rank can load the payload with weights_only=True.
        torch.save({"family": cfg.family, "cfg": cfg.to_dict(), "state": state, "tokens": data.tokens,
                    "target_bytes": data.target_bytes, "impl": impl, "max_tokens": max_tokens,
                    "threads": threads}, payload_path)
        mp.start_processes(_rank_main, args=(world, _free_port(), backend, payload_path, out_path),
                           nprocs=world, join=True, start_method="spawn")
        raw = json.loads(Path(out_path).read_text())
        raw["chunks"] = [ChunkRecord(**c) for c in raw["chunks"]]
        raw["events"] = [Event(**e) for e in raw["events"]]
        return EvalResult(**raw)
