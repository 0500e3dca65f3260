#!/usr/bin/env bash
# Quick start, step 1: install what is missing, build the native engine and the WebAssembly
# module, convert the official checkpoints, and upscale a sample image both ways.
#
#   tools/setup.sh [--no-sample]
#
# Environment: IMDN_CHECKPOINTS (folder of the authors' .pth files; default ../shared/imdn/
# checkpoints, else downloaded), IMDN_SAMPLE (image to upscale), IMDN_CACHE_DIR (~/.cache/imdn-wasm).
source "$(dirname "$0")/lib.sh"

sample=1
[ "${1:-}" = "--no-sample" ] && sample=0

ensure_packages
build_native
build_wasm
ensure_node_modules
convert_models

if [ "$sample" = 1 ]; then
  input=${IMDN_SAMPLE:-$ROOT/../shared/imdn/datasets/Set5_LR/x4/butterflyx4.bmp}
  if [ ! -f "$input" ]; then
    input=$CACHE/butterflyx4.bmp
    [ -f "$input" ] || curl -fsSL -o "$input" "https://github.com/Zheng222/IMDN/raw/8f158e6/Test_Datasets/Set5_LR/x4/butterflyx4.bmp"
  fi
  say "Upscaling $(basename "$input") x4, natively and with the WebAssembly build"
  "$BUILD/native/imdn-upscale" --model "$BUILD/models/IMDN_x4.imdn" "$input" "$BUILD/sample-x4-native.png"
  node "$ROOT/wasm/cli.js" "$input" -o "$BUILD/sample-x4-wasm.png" --model x4 --models-dir "$BUILD/models"
fi
say "Done. Models in build/models; try: node wasm/cli.js IMAGE -o OUT.png --model x4"
