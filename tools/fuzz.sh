#!/usr/bin/env bash
# Fuzzes the loaders and the network under ASan + UBSan (libFuzzer, Debian's clang-14): image
# decoding, .imdn model files, PyTorch checkpoints, and networks of arbitrary hyper-parameters on
# tiny images (exact tiles must equal the whole image). Seed corpora are written by
# tests/fuzz/make_corpus.cpp; findings go to build/fuzz/findings/<target>/.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]     SECONDS per target (default 60); exits 1 on any finding
#
# Needs the native build (tools/setup.sh): the fuzzers link its XNNPACK (built with gcc) and
# instrument only our code.
source "$(dirname "$0")/lib.sh"
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(image model checkpoint network)

ensure_packages clang-14:/usr/bin/clang++-14 libclang-rt-14-dev:/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a
deps=$(sed -n 's/^IMDN_XNNPACK_DEPS_USED:INTERNAL=//p' "$BUILD/native/CMakeCache.txt" 2>/dev/null || true)
[ -f "$deps" ] || { build_native >/dev/null; deps=$(sed -n 's/^IMDN_XNNPACK_DEPS_USED:INTERNAL=//p' "$BUILD/native/CMakeCache.txt"); }

dir=$BUILD/fuzz
flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined"
say "Building the fuzz targets (build/fuzz, clang-14, ASan + UBSan)"
CC=clang-14 CXX=clang++-14 cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DIMDN_FUZZ=ON -DIMDN_BUILD_TESTS=OFF -DIMDN_XNNPACK_DEPS_FILE="$deps" \
  "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_CXX_FLAGS=$flags" "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" >/dev/null
cmake --build "$dir" --target "${targets[@]/#/fuzz_}" | grep -v '^\[' || true
cmake --build "$BUILD/native" --target make_corpus | grep -v '^\[' || true
rm -rf "$dir/seeds" && "$BUILD/native/tests/make_corpus" "$dir/seeds"
cp "$ROOT"/tests/data/repro/* "$dir/seeds/image/"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for t in "${targets[@]}"; do
  corpus=$dir/corpus/$t findings=$dir/findings/$t
  mkdir -p "$corpus" "$findings"
  say "fuzz_$t for ${seconds}s"
  # -rss_limit_mb: a run needing more than that is a finding (a bomb we let through).
  if "$dir/tests/fuzz/fuzz_$t" "$corpus" "$dir/seeds/$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
      -malloc_limit_mb=1024 -artifact_prefix="$findings/" -print_final_stats=1 > "$dir/$t.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/$t.log")
    echo "fuzz_$t: ${runs:-?} runs in ${seconds}s, no finding (corpus $(ls "$corpus" | wc -l) inputs)"
  else
    status=1
    echo "fuzz_$t: FINDING (see $dir/$t.log and $findings/)"
    grep -E "ERROR|SUMMARY|runtime error|==[0-9]+==" "$dir/$t.log" | head -20
  fi
done
exit $status
