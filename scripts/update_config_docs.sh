#!/usr/bin/env bash
# update_config_docs.sh [VQA_TRAIN]: rewrites the key table of configs/README.md (between
# the keys:begin / keys:end markers) from `vqa_train --print-keys`, i.e. from the key
# table in src/config/cfg_keys.c. tests/test_config.c fails when a key is undocumented.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/vqa_train}
doc=$root/configs/README.md
table=$(mktemp)
trap 'rm -f "$table"' EXIT
"$bin" --print-keys >"$table"
awk -v table="$table" '
  /<!-- keys:begin/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
  /<!-- keys:end/   { skip = 0 }
  !skip { print }
' "$doc" >"$doc.tmp"
mv "$doc.tmp" "$doc"
echo "updated $doc ($(grep -c '^| `' "$doc") keys)"
