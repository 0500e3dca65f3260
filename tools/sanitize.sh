#!/usr/bin/env bash
# The native suite under AddressSanitizer + UndefinedBehaviorSanitizer (gcc; our code instrumented,
# XNNPACK the native build's). The slowest official-weights cases (whole Set5 through every model
# and tiling of every Set5 image) are left to the plain suite; everything else runs.
#
#   tools/sanitize.sh
source "$(dirname "$0")/lib.sh"
dir=$BUILD/asan
flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
say "Building the native suite with ASan + UBSan (build/asan)"
cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_CXX_FLAGS=$flags" \
  "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" >/dev/null
cmake --build "$dir" | grep -v '^\[' || true
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
say "Native tests under ASan + UBSan"
ctest --test-dir "$dir" --output-on-failure -j2 -E 'Official/Set5\.|Official/TiledSet5\.|winograd_parity|cli_set5'
