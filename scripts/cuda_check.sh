#!/usr/bin/env bash
# The checks that need a GPU, as one short script for a lent GPU machine (CI has none):
# the cuda-marked tests, peak memory on CUDA, and a small `--device cuda` run whose
# report and results land in $OUT. Run from the repository root.
set -uo pipefail
OUT=${OUT:-/tmp/cuda-check}
mkdir -p "$OUT"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0), 'cpu', torch.backends.cpu.get_cpu_capability())"
HARNESS_TEST_CUDA=1 timeout 240 python3 -m pytest -q -p no:cacheprovider -m cuda \
    tests/harness/test_run.py tests/harness/test_memory.py 2>&1 | tail -15
timeout 300 python3 -m harness run --layers conv2d,fft --impls scipy,numpy,torch,compile \
    --device cuda --grid n=64,512 --grid k=3 --profile quick --no-capabilities \
    --out "$OUT/run" 2>&1 | tail -25
cp "$OUT/run/report.md" "$OUT/run/results.csv" "$OUT/" 2>/dev/null
ls "$OUT"
