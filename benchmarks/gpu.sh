#!/usr/bin/env bash
# The GPU half, proven in one command on a machine with an NVIDIA GPU and nothing installed:
# installs the `gpu` extra, checks that TensorFlow sees the GPU, then measures training
# throughput (img/s, achieved TFLOP/s against the card's bf16 matmul rate measured in the same
# run) and the `gpu` profile's validation accuracy against wall time. About 12 minutes in all.
#
#   benchmarks/gpu.sh [ARCHIVE] [OUT_DIR]
#
# ARCHIVE defaults to the first cifar10-jpeg-train.tar.gz found under shared/datasets,
# ../shared/datasets or /work/shared/datasets; OUT_DIR to $OUT (if set) or results-gpu/.
set -euo pipefail
cd "$(dirname "$0")/.."
archive="${1:-}"
out="${2:-${OUT:-results-gpu}}"
if [ -z "$archive" ]; then
  for candidate in shared/datasets ../shared/datasets /work/shared/datasets; do
    if [ -f "$candidate/cifar10-jpeg-train.tar.gz" ]; then
      archive="$candidate/cifar10-jpeg-train.tar.gz"
      break
    fi
  done
fi
[ -f "$archive" ] || { echo "gpu.sh: no CIFAR-10 archive found; pass its path" >&2; exit 2; }
mkdir -p "$out"
exec > >(tee "$out/gpu.log") 2>&1
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start ))s] $*"; }

stamp "installing the gpu extra"
python3 -m venv .venv-gpu
.venv-gpu/bin/python -m pip install --quiet --upgrade pip
.venv-gpu/bin/python -m pip install --quiet -e ".[gpu]"
py=.venv-gpu/bin/python

stamp "checking the GPU"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/nvidia-smi.csv"
$py - <<'PY'
import sys
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
print("TensorFlow", tf.__version__, "sees", gpus)
sys.exit(0 if gpus else "TensorFlow sees no GPU: check the driver and the CUDA wheels")
PY

export TF_CPP_MIN_LOG_LEVEL=2
stamp "throughput: default spec, XLA on, and the gpu profile (one round)"
timeout 240 $py benchmarks/throughput.py --archive "$archive" --images 20480 --rounds 1 \
  --only 7,8 --out "$out/throughput.json" || stamp "throughput did not finish (exit $?)"

stamp "accuracy: the gpu profile for 5 minutes of training"
timeout 420 $py benchmarks/accuracy.py --archive "$archive" --profile gpu --minutes 5 \
  --out "$out/accuracy-gpu.json" || stamp "accuracy did not finish (exit $?)"
stamp "done; results in $out"
