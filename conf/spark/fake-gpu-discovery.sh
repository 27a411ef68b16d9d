#!/usr/bin/env bash
# A FAKE GPU discovery script for tests on machines without GPUs (the trainer then runs with --accelerator cpu; only
# Spark's GPU scheduling is exercised). Each call hands out the next address of GOSLING_FAKE_GPUS (default "0,1"),
# round robin per calling process: the standalone workers of a local-cluster master are threads of one JVM on one
# host, and without this they would all discover the same GPUs, where real workers on different hosts (or with
# disjoint CUDA_VISIBLE_DEVICES) each have their own.
#   prints e.g. {"name":"gpu","addresses":["1"]}
set -euo pipefail
IFS=, read -ra gpus <<< "${GOSLING_FAKE_GPUS:-0,1}"
counter="${TMPDIR:-/tmp}/gosling-fake-gpus.$PPID"
exec 9>>"$counter.lock"
flock 9
n=$(cat "$counter" 2>/dev/null || echo 0)
echo $((n + 1)) > "$counter"
flock -u 9
echo "{\"name\":\"gpu\",\"addresses\":[\"${gpus[$((n % ${#gpus[@]}))]}\"]}"
