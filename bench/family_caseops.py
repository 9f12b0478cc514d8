"""CaseOps family throughput: the fast path against the reference-shaped loop (`impl="plain"`: full
(T, vocab) logits for every position of every window), measured in the same run, interleaved,
same weights and data, on the public fixture artifact.

    .venv/bin/python bench/family_caseops.py [--repeats 2] [--device cpu|cuda] [--out FILE.json]

Cases: `standard` (the fixture's whole standard eval, 25,600 targets) and `lora_ttt` (LoRA-only
phased TTT over the first `--ttt-tokens` targets). Prints median wall and CPU seconds per impl,
targets per second, the speed-up and the BPB difference (must stay below 1e-5). On CUDA the
procedures run under bf16 autocast as the reference does.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gepa import runner  # noqa: E402

FX = ROOT / "tests" / "data" / "caseops_small"


def _cases(ttt_tokens: int):
    std = json.loads((FX / "eval_standard.json").read_text())
    yield "standard", std, None
    lora = copy.deepcopy(json.loads((FX / "eval_lora_only_adam.json").read_text()))
    yield "lora_ttt", lora, ttt_tokens


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--ttt-tokens", type=int, default=6144)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    report = {"device": args.device, "threads": torch.get_num_threads(), "cases": {}}
    for name, cfg, max_tokens in _cases(args.ttt_tokens):
        prep = runner.prepare(FX / "final_model.int6.ptz", cfg)
        data = prep.family.load_data(prep.cfg, str(FX / "fineweb_val_*.bin"), runner.default_tokenizer(prep.family))
        times = {"fast": [], "plain": []}
        bpb = {}
        targets = 0
        for _ in range(args.repeats):
            for impl in ("plain", "fast"):  # interleaved, so drift on a shared machine hits both
                model = prep.family.build_model(prep.cfg, prep.state, torch.device(args.device))
                w0, c0 = time.perf_counter(), time.process_time()
                res = prep.family.evaluate(model, data, prep.cfg, device=torch.device(args.device), impl=impl,
                                           max_tokens=max_tokens)
                times[impl].append((time.perf_counter() - w0, time.process_time() - c0))
                bpb[impl] = res.val_bpb
                targets = res.tokens_scored
        row = {"targets": targets}
        for impl, ts in times.items():
            wall, cpu = statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)
            row[impl] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "targets_per_s": round(targets / wall, 1)}
        row["speedup_wall"] = round(row["plain"]["wall_s"] / row["fast"]["wall_s"], 2)
        row["speedup_cpu"] = round(row["plain"]["cpu_s"] / row["fast"]["cpu_s"], 2)
        row["bpb_fast"], row["bpb_plain"] = bpb["fast"], bpb["plain"]
        row["bpb_abs_diff"] = abs(bpb["fast"] - bpb["plain"])
        report["cases"][name] = row
        print(f"{name:9s} targets {targets:>6}  plain {row['plain']['wall_s']:7.2f}s ({row['plain']['cpu_s']:.2f} cpu)  "
              f"fast {row['fast']['wall_s']:7.2f}s ({row['fast']['cpu_s']:.2f} cpu)  x{row['speedup_cpu']} (cpu)  "
              f"|dBPB| {row['bpb_abs_diff']:.2e}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
