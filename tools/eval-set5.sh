#!/usr/bin/env bash
# Set5 through the command line and the evaluation tool, as a user would run them:
# imdn-upscale on every Set5 LR image, imdn-eval against the HR images, the paper's metric.
#
#   tools/eval-set5.sh [--bin DIR] [--models DIR] [--shared DIR] [--out DIR] [--check]
#
# --check: exit 1 unless every model lands within 0.005 dB of the official code's Set5 numbers
# (../shared/imdn/README.md); exit 77 (skipped) when the Set5 data or models are absent.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/build/native"
models="$here/build/models"
shared="$here/../shared"
out="${TMPDIR:-/tmp}/imdn-set5"
check=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --shared) shared=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --check) check=1; shift ;;
    *) echo "usage: $0 [--bin DIR] [--models DIR] [--shared DIR] [--out DIR] [--check]" >&2; exit 2 ;;
  esac
done
set5="$shared/imdn/datasets"
if [ ! -d "$set5/Set5_HR" ] || [ ! -f "$models/IMDN_x4.imdn" ]; then
  echo "Set5 or converted models not found ($set5, $models): skipped"
  exit 77
fi
mkdir -p "$out"
# model  LR folder  scale  Y-PSNR of the official code (Set5, paper metric)
table="IMDN_x2 x2 2 37.996
IMDN_x3 x3 3 34.360
IMDN_x4 x4 4 32.210
IMDN_RTC x2 2 37.311
IMDN_RTE x2 2 35.410"
status=0
printf '%-10s %10s %10s %10s\n' model PSNR SSIM expected
while read -r model lr scale want; do
  pairs=()
  for name in baby bird butterfly head woman; do
    "$bin/imdn-upscale" --quiet --model "$models/$model.imdn" "$set5/Set5_LR/$lr/${name}x$scale.bmp" "$out/${model}_$name.png"
    pairs+=("$out/${model}_$name.png" "$set5/Set5_HR/$name.bmp")
  done
  read -r _ _ psnr _ ssim < <("$bin/imdn-eval" --shave "$scale" "${pairs[@]}" | tail -1)
  printf '%-10s %10s %10s %10s\n' "$model" "$psnr" "$ssim" "$want"
  if ! awk -v a="$psnr" -v b="$want" 'BEGIN { d = a - b; exit !(d <= 0.005 && d >= -0.005) }'; then
    echo "  $model: PSNR $psnr is not within 0.005 dB of $want" >&2
    status=1
  fi
done <<< "$table"
[ "$check" = 1 ] && exit $status
exit 0
