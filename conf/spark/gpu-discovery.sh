#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript, spark.worker.resource.gpu.discoveryScript):
# prints this machine's GPUs as Spark's resource JSON, e.g. {"name":"gpu","addresses":["0","1"]}.
# The addresses are CUDA device indices as nvidia-smi numbers them; gosling train --spark maps them through
# CUDA_VISIBLE_DEVICES when the executor has one.
set -euo pipefail
ids=$(nvidia-smi --query-gpu=index --format=csv,noheader | tr -d ' ' | paste -sd, -)
echo "{\"name\":\"gpu\",\"addresses\":[\"${ids//,/\",\"}\"]}"
