#!/usr/bin/env bash
# Quick start, step 1: install what is missing, build the native engine and the WebAssembly
# modules, and upscale a sample image both ways with the authors' x4 checkpoint.
#
#   tools/setup.sh [--no-sample]
#
# Environment: IMDN_CHECKPOINTS (folder of the authors' .pth files; default ../shared/imdn/
# checkpoints, else the package downloads x4 by name and caches it), IMDN_SAMPLE (image to
# upscale), IMDN_CACHE_DIR (~/.cache/imdn-wasm).
source "$(dirname "$0")/lib.sh"

sample=1
[ "${1:-}" = "--no-sample" ] && sample=0

ensure_packages
build_native
build_wasm
ensure_node_modules
convert_models

if [ "$sample" = 1 ]; then
  checkpoints=${IMDN_CHECKPOINTS:-$ROOT/../shared/imdn/checkpoints}
  input=${IMDN_SAMPLE:-$ROOT/../shared/imdn/datasets/Set5_LR/x4/butterflyx4.bmp}
  if [ ! -f "$input" ]; then
    input=$BUILD/sample.png
    node -e "
      import('$ROOT/wasm/node.js').then(async ({ writePng }) => {
        const w = 96, h = 64, data = new Uint8Array(w * h * 3);
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([x * 2, y * 3, (x ^ y) * 4], (y * w + x) * 3);
        await writePng('$input', { data, width: w, height: h, channels: 3 });
      });"
  fi
  # The Node CLI takes the model by name: from the checkpoints folder when there is one, else
  # downloaded from the authors' repository (checked against its sha256, then cached).
  models=()
  [ -f "$checkpoints/IMDN_x4.pth" ] && models=(--models-dir "$checkpoints")
  say "Upscaling $(basename "$input") x4 with the WebAssembly build (node wasm/cli.js)"
  node "$ROOT/wasm/cli.js" "$input" -o "$BUILD/sample-x4-wasm.png" --model x4 "${models[@]}"
  if [ -f "$checkpoints/IMDN_x4.pth" ]; then
    say "... and natively (build/native/imdn-upscale)"
    "$BUILD/native/imdn-upscale" --model "$checkpoints/IMDN_x4.pth" "$input" "$BUILD/sample-x4-native.png"
  fi
fi
say "Done. Try: node wasm/cli.js IMAGE -o OUT.png --model x4"
