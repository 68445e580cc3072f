#!/usr/bin/env bash
# Fails when any C or CUDA source differs from .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h' '*.cu' 2>/dev/null || true)
[ -n "$files" ] || files=$(find . -path ./build\* -prune -o \( -name '*.c' -o -name '*.h' -o -name '*.cu' \) -print)
bad=0
for f in $files; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "format: $f differs from .clang-format (run: clang-format -i $f)"
    bad=1
  fi
done
[ $bad -eq 0 ] && echo "format: ok"
exit $bad
