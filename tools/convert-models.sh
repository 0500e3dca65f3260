#!/usr/bin/env bash
# The official checkpoints found in CHECKPOINT_DIR as .imdn files in OUT_DIR, with the CLI's
# convert (native or Node): IMDN_x2/x3/x4, IMDN_AS, IMDN_RTC, IMDN_RTE. Quietly does nothing when
# CHECKPOINT_DIR is absent (a clone without ../shared). Used by tools/setup.sh and CTest.
#
#   tools/convert-models.sh CLI CHECKPOINT_DIR OUT_DIR
set -euo pipefail
cli=$1 src=$2 out=$3
[ -d "$src" ] || { echo "convert-models: $src is absent; nothing to convert"; exit 0; }
mkdir -p "$out"
for pair in IMDN_x2:IMDN_x2 IMDN_x3:IMDN_x3 IMDN_x4:IMDN_x4 IMDN_AS:IMDN_AS model_RTC:IMDN_RTC model_RTE:IMDN_RTE; do
  from=$src/${pair%%:*}.pth to=$out/${pair##*:}.imdn
  [ -f "$from" ] || continue
  if [ ! -f "$to" ] || [ "$from" -nt "$to" ] || [ "$cli" -nt "$to" ]; then "$cli" convert "$from" "$to"; fi
done
