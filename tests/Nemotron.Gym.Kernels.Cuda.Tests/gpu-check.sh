#!/usr/bin/env bash
# One GPU session's checks, run on the lent GPU machine from the repository root after
#   ../shared/gpu/stage tests/Nemotron.Gym.Kernels.Cuda.Tests tests/Nemotron.Gym.Benchmarks
# (drop .gpu/Nemotron.Gym.Benchmarks/plugins before carrying .gpu: the benchmark needs no plugins there).
# Runs the GPU tests, the CUDA benchmark and the PyTorch peer, each under its own time limit, and writes
# their logs (and the tests' xml) to $OUT, or to ./gpu-out when OUT is unset.
# Usage: bash tests/Nemotron.Gym.Kernels.Cuda.Tests/gpu-check.sh [tests|bench|peer ...] [-- extra test args]
set -uo pipefail
out=${OUT:-$PWD/gpu-out}; mkdir -p "$out"
steps=(); extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
  steps+=("$1"); shift
done
[ ${#steps[@]} -gt 0 ] || steps=(tests bench peer)
seconds=${BENCH_SECONDS:-10}

mkdir -p /tmp/dn && { [ -x /tmp/dn/dotnet/dotnet ] || tar xJf .gpu/dotnet-runtime.txz -C /tmp/dn; }
export DOTNET_ROOT=/tmp/dn/dotnet PATH=/tmp/dn/dotnet:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; ldconfig -p | grep -E 'libcuda\.|nvrtc|cublas' ; } > "$out/env.txt" 2>&1
cat "$out/env.txt"
root=$PWD
for step in "${steps[@]}"; do
  case $step in
    tests)
      echo "=== GPU tests"
      (cd .gpu/Nemotron.Gym.Kernels.Cuda.Tests && timeout ${TESTS_LIMIT:-330} dotnet Nemotron.Gym.Kernels.Cuda.Tests.dll \
         -trait Category=Gpu -result-xml "$out/gpu-tests.xml" "${extra[@]}") > "$out/gpu-tests.log" 2>&1
      echo "exit $?" >> "$out/gpu-tests.log"
      grep -E '\[FAIL\]|Total|exit' "$out/gpu-tests.log" | head -60 ;;
    bench)
      echo "=== cuda benchmark"
      (cd .gpu/Nemotron.Gym.Benchmarks && timeout ${BENCH_LIMIT:-150} dotnet Nemotron.Gym.Benchmarks.dll cuda "$seconds" ${BENCH_ARGS:---breakdown}) 2>&1 | tee "$out/cuda-bench.log" ;;
    peer)
      echo "=== PyTorch peer"
      PYTHONUNBUFFERED=1 timeout ${PEER_LIMIT:-110} python3 "$root/tests/Nemotron.Gym.Benchmarks/peer/torch_peer.py" --seconds "$seconds" $([ -s "$out/cuda-bench.log" ] && echo --compare "$out/cuda-bench.log") ${PEER_ARGS:-} 2>&1 | tee "$out/torch-peer.log" ;;
  esac
done
