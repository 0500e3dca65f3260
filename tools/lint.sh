#!/usr/bin/env bash
# The code's habits, checked (tools/test.sh runs this): the package's JavaScript type-checked with
# checkJs (tsconfig.json), JavaScript formatted and linted by Biome (biome.json), C++ formatted by
# clang-format (.clang-format), and the C++ core's shape (tools/check-structure.mjs: file and
# function sizes, no include cycles) and the .wasm files' size budgets (tools/bench/wasm-size.mjs;
# they must be built). `tools/lint.sh --fix` applies the formatters instead.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
cpp=$(git ls-files 'src/*.cpp' 'src/*.h' 'src/cli/*.cpp' 'wasm/*.cpp' 'tests/*.cpp' 'tests/*.h' 'tests/fuzz/*.cpp' 'tools/bench/*.cpp')
if [ "${1:-}" = "--fix" ]; then
  clang-format-14 -i $cpp
  node_modules/.bin/biome check --write .
  exit 0
fi
# Each check prints "lint ok: <name>" or "lint FAILED: <name>" (tools/test.sh counts them).
status=0
check() {
  local name=$1
  shift
  if "$@"; then echo "lint ok: $name"; else echo "lint FAILED: $name"; status=1; fi
}
check "tsc --noEmit, strict checkJs over wasm/, web/ and tools/" sh -c 'node_modules/.bin/tsc -p tsconfig.json && node_modules/.bin/tsc -p tools'
check "biome ci, JavaScript format and lint (warnings fail)" node_modules/.bin/biome ci --colors=off --error-on-warnings .
check "clang-format-14, C++ format" clang-format-14 --dry-run -Werror $cpp
check "src/ structure: files, functions, include cycles" node tools/check-structure.mjs
check "the .wasm files within their gzipped size budgets" node tools/bench/wasm-size.mjs --budget
exit $status
