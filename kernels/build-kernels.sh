#!/usr/bin/env bash
# Compiles every kernels/src/main/cuda/<op>.cu into <out>/<op>.fatbin: machine code for sm_80, sm_86, sm_89 and
# sm_90 plus compute_90 PTX (newer GPUs JIT it). Run by Maven (exec-maven-plugin, generate-resources) and by hand:
#   kernels/build-kernels.sh <cuda-source-dir> <output-dir>
# Without nvcc it prints one line and exits 0: the jar then carries only the .cu sources, which the loader compiles
# with NVRTC at first use. GOSLING_REQUIRE_NVCC=1 (CI) turns a missing nvcc into a failure. Up-to-date outputs
# (newer than their .cu and every .cuh) are kept.
set -euo pipefail
src=${1:?usage: build-kernels.sh <cuda-source-dir> <output-dir>}
out=${2:?usage: build-kernels.sh <cuda-source-dir> <output-dir>}

nvcc=${NVCC:-}
if [ -z "$nvcc" ]; then
  nvcc=$(command -v nvcc || true)
fi
if [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
  nvcc=/usr/local/cuda/bin/nvcc
fi
if [ -z "$nvcc" ]; then
  if [ "${GOSLING_REQUIRE_NVCC:-0}" = 1 ]; then
    echo "[gosling-kernels] ERROR: nvcc not found (GOSLING_REQUIRE_NVCC=1): install the CUDA toolkit or set NVCC" >&2
    exit 1
  fi
  echo "[gosling-kernels] nvcc not found: no fatbins built; the kernels will be compiled with NVRTC at first use"
  exit 0
fi

mkdir -p "$out"
newest_header=0
for h in "$src"/*.cuh; do
  [ -e "$h" ] || continue
  t=$(stat -c %Y "$h")
  [ "$t" -gt "$newest_header" ] && newest_header=$t
done

built=0
for cu in "$src"/*.cu; do
  op=$(basename "$cu" .cu)
  fatbin="$out/$op.fatbin"
  if [ -e "$fatbin" ]; then
    t=$(stat -c %Y "$fatbin")
    if [ "$t" -ge "$(stat -c %Y "$cu")" ] && [ "$t" -ge "$newest_header" ]; then
      continue
    fi
  fi
  "$nvcc" -fatbin -O3 -std=c++17 -I"$src" -Werror all-warnings \
    -gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 \
    -gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code='[sm_90,compute_90]' \
    -o "$fatbin.tmp" "$cu"
  mv "$fatbin.tmp" "$fatbin"
  built=$((built + 1))
done
echo "[gosling-kernels] $("$nvcc" --version | tail -1 | sed 's/^Build //'): $built fatbin(s) built in $out"
