#!/usr/bin/env bash
# The one prepared script for a lent GPU machine (run from the repo root; results land in $OUT).
# Budget: about 10 minutes. Sets up a venv if the machine has none, then:
#   1. CUDA bf16 vs CPU fp32 BPB on every family's fixture (bench/cuda_vs_cpu.py)
#   2. seed-config throughput and projected full-validation time (bench/gpu_eval.py)
#   3. sp8192 fast vs plain on CUDA (bench/family_sp8192.py)
#   4. CaseOps fast vs plain on CUDA bf16 (bench/family_caseops.py)
#   5. baseline fast vs plain on CUDA (bench/family_baseline.py)
#   6. march11l fast vs plain on CUDA (bench/family_march11l.py)
set -uo pipefail
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
PY=.venv/bin/python
if ! $PY -c 'import torch, gepa' 2>/dev/null; then
  python3 -m venv .venv && .venv/bin/pip install -q torch==2.13.0 && .venv/bin/pip install -q -e . || exit 1
fi
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/nvidia-smi.txt"
timeout 300 $PY bench/cuda_vs_cpu.py --out "$OUT/cuda_vs_cpu.json" 2>&1 | tee "$OUT/cuda_vs_cpu.txt"
timeout 300 $PY bench/gpu_eval.py --device cuda --chunks 4 --out "$OUT/gpu_eval.json" 2>&1 | tee "$OUT/gpu_eval.txt"
# sp8192 family: fast vs plain on the GPU (bf16 autocast, bf16 tok_emb as the records ran) for its
# fixture configs; its CUDA-vs-CPU BPB is already part of step 1 (--only sp8192 to rerun it alone).
timeout 150 $PY bench/family_sp8192.py --device cuda --repeats 1 --out "$OUT/family_sp8192_cuda.json" 2>&1 | tee "$OUT/family_sp8192_cuda.txt"
# 4. CaseOps family on CUDA (bf16 autocast): fast vs plain throughput and BPB agreement on the
#    fixture (standard + LoRA TTT); the fp32 CPU side of each eval_*.json is in step 1.
timeout 240 $PY bench/family_caseops.py --device cuda --repeats 1 --ttt-tokens 25000 --out "$OUT/family_caseops_cuda.json" 2>&1 | tee "$OUT/family_caseops_cuda.txt"
# 5. baseline family on CUDA (bf16 autocast, bf16 tok_emb as the records ran): fast vs plain for
#    sliding (T 128 and 1024) and LoRA TTT on its fixture; its bf16-vs-fp32 BPB is in step 1.
timeout 120 $PY bench/family_baseline.py --device cuda --repeats 1 --out "$OUT/family_baseline_cuda.json" 2>&1 | tee "$OUT/family_baseline_cuda.txt"
# 6. march11l family on CUDA (bf16 autocast, bf16 embedding tables as the records ran): fast vs
#    plain for sliding (T 256 and 1280) and legal TTT on its fixture; its CUDA-vs-CPU BPB is in step 1.
timeout 120 $PY bench/family_march11l.py --device cuda --repeats 1 --out "$OUT/family_march11l_cuda.json" 2>&1 | tee "$OUT/family_march11l_cuda.txt"
