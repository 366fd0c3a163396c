#!/usr/bin/env bash
# Checks the logic of the attention (tensor-core and SIMT, forward and backward), KV-cache decode and sampling
# kernels on a machine with no GPU: g++ compiles each .cu with the CUDA emulator (cuda_emu.h) and a reference.
# It proves the indexing, fragment layouts, barriers and the sampling rule; not speed, and not the real hardware.
# Usage: tests/Nemotron.Gym.Kernels.Cuda.Tests/Emulator/run.sh   (needs g++; about a minute)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../../kernels/cuda" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for check in attention decode sampling; do
  g++ -O1 -std=c++17 -I"$src" -I"$here" -o "$out/$check" "$here/${check}_check.cpp"
done
"$out/attention" 1 70 64 2      # hs 32, a partial tile
"$out/attention" 2 33 64 4      # hs 16
"$out/attention" 1 70 256 2     # hs 128
"$out/decode" 64 2 50 1
"$out/decode" 64 2 50 3         # keys split across blocks, then merged
"$out/decode" 128 2 700 11
"$out/decode" 96 2 33 2         # hs 48
"$out/sampling"
