#!/usr/bin/env bash
# One prepared check for a lent GPU machine (CUDA PyTorch and NVML there; no network, at most 64 MiB
# carried besides its own PyTorch). Two steps:
#
#   here:    bash scripts/device_check.sh prepare [PYTHON_VERSION]   # default: the device's usual 3.11
#            -> out/device_check/: the pretrained bundle (model.onnx + model.pt2), preprocessed photos,
#               wheels for what the device may lack (onnxruntime, pyyaml, nvidia-ml-py); prints its size
#   device:  bash scripts/device_check.sh run        (carry: out/device_check)
#            -> JSON on stdout and in $OUT/device_check.json (or out/device_check/result.json)
#
# The run installs the carried wheels into a throwaway venv that sees the machine's PyTorch
# (--system-site-packages), then runs scripts/device_check.py: CUDA PyTorch backend vs ONNX Runtime
# (CPU) outputs and timings, NVML read under load, and TensorRT fp32/fp16 engines where TensorRT imports.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
stage=out/device_check
step=${1:-run}

case "$step" in
  prepare)
    pyver=${2:-3.11}
    py=.venv/bin/python
    rm -rf "$stage" && mkdir -p "$stage/bundle" "$stage/wheels"
    bundle=$("$py" -c 'from aiat_perception.cli.detect import ensure_default_bundle; print(ensure_default_bundle(quiet=True))')
    cp "$bundle/bundle.yaml" "$bundle/model.onnx" "$bundle/model.pt2" "$stage/bundle/"
    "$py" - "$stage/bundle" "$stage/inputs.npz" <<'PY'
import sys
import cv2
import numpy as np
from aiat_perception.assets import darknet_image
from aiat_perception.inference.bundle import load_bundle
from aiat_perception.inference.preprocess import Preprocessor
bundle = load_bundle(sys.argv[1])
images = [cv2.imread(str(darknet_image(n))) for n in ('dog.jpg', 'person.jpg')]
batch, _ = Preprocessor(bundle.input)(images, 'bgr8')
np.savez_compressed(sys.argv[2], batch=batch.astype(np.float32))
PY
    "$py" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --python-version "$pyver" --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d "$stage/wheels" onnxruntime pyyaml nvidia-ml-py 2> >(grep -v '^WARNING: Location' >&2)
    du -sh "$stage"; du -sb "$stage" | awk '{ if ($1 > 64*1024*1024) { print "too large to carry (64 MiB)"; exit 1 } }'
    ;;
  run)
    [ -d "$stage/bundle" ] || { echo "no $stage: run 'bash scripts/device_check.sh prepare' first and carry it" >&2; exit 2; }
    py=$(command -v python3 || command -v python)
    for candidate in python3 python /usr/bin/python3 /opt/conda/bin/python; do
      if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import torch' 2>/dev/null; then
        py=$(command -v "$candidate"); break
      fi
    done
    venv=$(mktemp -d /tmp/aiat-device-check.XXXX)
    "$py" -m venv --system-site-packages "$venv"
    missing=()
    "$venv/bin/python" -c 'import onnxruntime' 2>/dev/null || missing+=(onnxruntime)
    "$venv/bin/python" -c 'import yaml' 2>/dev/null || missing+=(pyyaml)
    "$venv/bin/python" -c 'import pynvml' 2>/dev/null || missing+=(nvidia-ml-py)
    if [ ${#missing[@]} -gt 0 ]; then
      "$venv/bin/python" -m pip install -q --no-index --no-deps --find-links "$stage/wheels" "${missing[@]}" >&2 \
        || echo "could not install ${missing[*]} from $stage/wheels (wrong Python version? prepare with the device's)" >&2
    fi
    result=${OUT:-$stage}/device_check.json
    PYTHONPATH="$repo" timeout 540 "$venv/bin/python" scripts/device_check.py --bundle "$stage/bundle" \
      --inputs "$stage/inputs.npz" --out "$result" ${DEVICE_CHECK_ARGS:-}
    ;;
  *) echo "usage: $0 prepare [PYTHON_VERSION] | run" >&2; exit 2 ;;
esac
