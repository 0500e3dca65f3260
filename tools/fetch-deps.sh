#!/usr/bin/env bash
# Puts the pinned dependency source trees where the build looks for them offline
# (~/.cache/imdn-wasm/src/{XNNPACK,pthreadpool,cpuinfo,FXdiv,stb}, or $IMDN_DEPS_SOURCE_DIR), from
# local git directories of their upstream repositories (clones or mirrors) at any revision that
# contains the pinned commits of cmake/deps/pins.cmake and cmake/deps/stb.cmake.
#
#   tools/fetch-deps.sh XNNPACK=/path/to/XNNPACK.git pthreadpool=... cpuinfo=... FXdiv=... stb=...
#
# With network access none of this is needed: CMake's FetchContent downloads the pins itself.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${IMDN_DEPS_SOURCE_DIR:-${IMDN_CACHE_DIR:-$HOME/.cache/imdn-wasm}/src}
pin() { sed -n "s/^set(IMDN_PIN_$1_COMMIT \([0-9a-f]*\))/\1/p" "$root/cmake/deps/pins.cmake" "$root/cmake/deps/stb.cmake"; }
[ $# -gt 0 ] || { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
for arg in "$@"; do
  name=${arg%%=*}
  gitdir=${arg#*=}
  case "$name" in
    XNNPACK) key=XNNPACK ;;
    pthreadpool) key=PTHREADPOOL ;;
    cpuinfo) key=CPUINFO ;;
    FXdiv) key=FXDIV ;;
    stb) key=STB ;;
    *) echo "unknown dependency $name (XNNPACK, pthreadpool, cpuinfo, FXdiv, stb)" >&2; exit 2 ;;
  esac
  commit=$(pin "$key")
  rm -rf "$dest/$name"
  mkdir -p "$dest/$name"
  git --git-dir="$gitdir" archive "$commit" | tar -x -C "$dest/$name"
  echo "$name $commit -> $dest/$name"
done
