#!/usr/bin/env bash
# fuzz.sh [SECONDS]: builds the libFuzzer targets with clang and runs each one
# for SECONDS (default 20) on its seed corpus. A crash fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
shopt -s nullglob
targets=()
for src in fuzz/fuzz_*.c; do targets+=("$(basename "${src%.c}")"); done
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets"; exit 0; }
CC=clang cmake -S . -B build-fuzz -DKILN_FUZZ=ON -DKILN_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
# Only the fuzz targets (and the libraries they link), not the whole tree.
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]}"
status=0
for bin in build-fuzz/fuzz/fuzz_*; do
  name=$(basename "$bin"); name=${name#fuzz_}
  work=$(mktemp -d)
  seeds=fuzz/corpus/$name
  [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/
  echo "fuzz: $name for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
       -artifact_prefix="build-fuzz/crash-$name-" "$work" >"build-fuzz/fuzz-$name.log" 2>&1; then
    echo "fuzz: $name FAILED"; tail -40 "build-fuzz/fuzz-$name.log"; status=1
  fi
  rm -rf "$work"
done
exit $status
