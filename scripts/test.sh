#!/usr/bin/env bash
# test.sh: installs what is needed, builds kiln, and runs every test:
# the unit and integration suites (ctest), the same suites under ASan+UBSan,
# the controller and client suites under ThreadSanitizer, the clang-format
# check, and each fuzz target for a short fixed time.
# KILN_TEST_QUICK=1 runs only the plain suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

scripts/build.sh build
ctest --test-dir build --output-on-failure -j2

[ "${KILN_TEST_QUICK:-0}" = 1 ] && exit 0

scripts/check-format.sh

scripts/build.sh build-asan -DKILN_SANITIZE=ON -DKILN_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j2

# The controller's workers, informers and leader election share caches across
# threads. jansson's reference counts are invisible to TSan (see tsan.supp).
scripts/build.sh build-tsan -DKILN_TSAN=ON -DKILN_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug
TSAN_OPTIONS="suppressions=$PWD/tests/controller/tsan.supp halt_on_error=1" \
  ctest --test-dir build-tsan --output-on-failure -j2 -R '^(controller|kube)/'

scripts/fuzz.sh "${KILN_FUZZ_SECONDS:-20}"
